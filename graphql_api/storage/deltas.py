"""Reading streamed messages: their stored deltas added to their text, and where a stream
stands for a reader that follows it.

A streamed message's item holds the text it started with (its base: empty for a message
started by startMessage, the text of an imported one) and status "streaming" until a finish
folds its deltas in (storage/streams.py). Every read path passes its messages through
`streamed_in`, as it passes them through content.filled_in, so a message reads the same
mid-stream wherever it is read: its base and its deltas in seq order, the last seq, and
"interrupted" once the lease (ChatTable.stream_lease) has passed since its last append.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from . import items, keys
from .batch import batch_get
from .checks import checked_id, checked_user
from .client import ChatTable
from .content import filled_in
from .records import (
    ConversationRecord,
    DeltaRecord,
    Item,
    MessageRecord,
    MessageStatus,
)


async def read_marker(table: ChatTable, *, conversation_id: str, message_id: str) -> Item | None:
    """A message's MSGID# marker, strongly consistent: for a streamed one, its owner and
    whether it still streams (items.stream_marker_item)."""
    async with table.guard():
        response = await table.client.get_item(
            TableName=table.name,
            Key=items.marker_key(conversation_id, message_id),
            ConsistentRead=True,
        )
    return response.get("Item")


async def read_deltas(
    table: ChatTable, *, user_id: str, conversation_id: str, message_id: str, first_seq: int = 1
) -> list[DeltaRecord]:
    """The delta items of a message from seq `first_seq` on (tombstones too), in seq order,
    strongly consistent: every acknowledged append is in it."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p AND SK BETWEEN :low AND :high",
        # Every delta carries its writer, as every message does: a colliding or guessed id
        # yields nothing of another user's.
        "FilterExpression": "userId = :user",
        "ExpressionAttributeValues": {
            ":p": {"S": keys.conversation_partition(conversation_id)},
            ":low": {"S": keys.delta_sk(message_id, first_seq)},
            ":high": {"S": keys.deltas_high(message_id)},
            ":user": {"S": user_id},
        },
        "ConsistentRead": True,
    }
    found: list[DeltaRecord] = []
    async with table.guard():
        while True:
            response = await table.client.query(**request)
            found.extend(items.delta_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def newest_delta(
    table: ChatTable, *, user_id: str, conversation_id: str, message_id: str
) -> DeltaRecord | None:
    """The delta item with the highest seq (a tombstone once finished), or None before the
    first append: one Query of one item."""
    async with table.guard():
        response = await table.client.query(
            TableName=table.name,
            KeyConditionExpression="PK = :p AND SK BETWEEN :low AND :high",
            FilterExpression="userId = :user",
            ExpressionAttributeValues={
                ":p": {"S": keys.conversation_partition(conversation_id)},
                ":low": {"S": keys.delta_sk(message_id, 0)},
                ":high": {"S": keys.deltas_high(message_id)},
                ":user": {"S": user_id},
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
    found = response.get("Items", [])
    return items.delta_from_item(found[0]) if found else None


def stream_status(table: ChatTable, last_activity: datetime, now: datetime) -> MessageStatus:
    """A streaming message's status as read at `now`: interrupted once no append came for
    the lease (last_activity is the newest delta's time, or the start's before the first)."""
    return "interrupted" if now - last_activity >= table.stream_lease else "streaming"


async def streamed_in(table: ChatTable, records: Sequence[MessageRecord]) -> list[MessageRecord]:
    """`records` with each streaming message's deltas added to its text, `stream_seq` set and
    its status "interrupted" once the lease has passed: one Query per streaming message, all
    at once; none when no record is streaming. A streamed record comes back whole (no
    `content_ref`: an imported base kept in the content bucket is read back); the others are
    left as they are (see `whole`)."""
    streaming = [record for record in records if record.status == "streaming"]
    if not streaming:
        return list(records)
    # An imported message's base may be kept in the content bucket.
    bases = await filled_in(table.content, streaming)
    found = await asyncio.gather(
        *(
            read_deltas(
                table,
                user_id=record.user_id,
                conversation_id=record.conversation_id,
                message_id=record.id,
            )
            for record in bases
        )
    )
    now = table.clock()
    grown: dict[tuple[str, str], MessageRecord] = {}
    for base, deltas in zip(bases, found, strict=True):
        if any(delta.folded for delta in deltas):
            # Finished between the read of its item and this Query: the item is final now.
            grown[base.conversation_id, base.id] = await _read_again(table, base)
        else:
            grown[base.conversation_id, base.id] = _grown(table, base, deltas, now)
    return [grown.get((record.conversation_id, record.id), record) for record in records]


async def whole(table: ChatTable, records: Sequence[MessageRecord]) -> list[MessageRecord]:
    """`records` as every read path serves them: content kept in the content bucket read
    back (content.filled_in) and streaming messages' deltas added (streamed_in), at once."""
    streamed, filled = await asyncio.gather(
        streamed_in(table, [record for record in records if record.status == "streaming"]),
        filled_in(table.content, [record for record in records if record.status != "streaming"]),
    )
    by_id = {(record.conversation_id, record.id): record for record in (*streamed, *filled)}
    return [by_id[record.conversation_id, record.id] for record in records]


def _grown(
    table: ChatTable, base: MessageRecord, deltas: list[DeltaRecord], now: datetime
) -> MessageRecord:
    last_activity = deltas[-1].at if deltas and deltas[-1].at is not None else base.created_at
    return dataclasses.replace(
        base,
        content=base.content + "".join(delta.text for delta in deltas),
        # Whole now: nothing is left to read from the bucket.
        content_ref=None,
        status=stream_status(table, last_activity, now),
        stream_seq=deltas[-1].seq if deltas else 0,
    )


async def _read_again(table: ChatTable, record: MessageRecord) -> MessageRecord:
    key = (keys.conversation_partition(record.conversation_id), record.position.sort_key())
    found = await batch_get(table, [key])
    if key not in found:
        return record
    (again,) = await filled_in(table.content, [items.message_from_attributes(found[key])])
    return again


async def streamed_previews(
    table: ChatTable, conversations: Sequence[ConversationRecord | None]
) -> list[ConversationRecord | None]:
    """`conversations` with the lastMessage preview of each streaming one showing its text so
    far (cut as every preview is): one Query per streaming preview, all at once; nothing when
    none streams."""
    streaming = [
        conversation
        for conversation in conversations
        if conversation is not None and _streams(conversation)
    ]
    if not streaming:
        return list(conversations)
    streamed = {
        conversation.id: conversation
        for conversation in await asyncio.gather(
            *(streamed_preview(table, conversation) for conversation in streaming)
        )
    }
    return [
        None if conversation is None else streamed.get(conversation.id, conversation)
        for conversation in conversations
    ]


def _streams(conversation: ConversationRecord) -> bool:
    preview = conversation.last_message
    return preview is not None and preview.status == "streaming"


async def streamed_preview(
    table: ChatTable, conversation: ConversationRecord
) -> ConversationRecord:
    """One conversation as streamed_previews gives it (a write answering with the conversation
    it wrote took its preview from a stored item)."""
    preview = conversation.last_message
    if preview is None or preview.status != "streaming":
        return conversation
    (streamed,) = await streamed_in(table, [preview])
    return dataclasses.replace(conversation, last_message=items.preview(streamed))


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamState:
    """A streamed message as a reader holding its text up to seq `after` sees it now.

    `text` is what the reader lacks: the deltas after `after`, coalesced. Once the message is
    finished, `final` is the message as stored and `text` the rest of its content; `replaced`
    then says `text` is the whole content instead (finishMessage gave the content, or where
    seq `after` ended is no longer known: tombstones go a day after the finish).
    """

    conversation_id: str
    message_id: str
    text: str
    # The last acknowledged seq: the newest delta, or the last one a finish folded in.
    seq: int
    status: MessageStatus
    # While it streams: its last activity (the newest delta's time, or the start's before the
    # first), from which the lease runs. None once finished.
    active_at: datetime | None = None
    final: MessageRecord | None = None
    replaced: bool = False


async def read_stream(
    table: ChatTable, *, user_id: str, conversation_id: str, message_id: str, after: int = 0
) -> StreamState | None:
    """Where the caller's streamed message stands after seq `after`; None when there is no
    such message of the caller's (missing, another user's, or one added whole). One wave
    (the marker and the deltas from `after` on), and one read more once it is finished."""
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    message_id = checked_id(message_id, field="messageId")
    async with table.guard():
        marker, deltas = await asyncio.gather(
            read_marker(table, conversation_id=conversation_id, message_id=message_id),
            read_deltas(
                table,
                user_id=user_id,
                conversation_id=conversation_id,
                message_id=message_id,
                first_seq=max(after, 0),
            ),
        )
    now = table.clock()
    if marker is None or items.streamed_by(marker) != user_id or items.expired(marker, now):
        return None
    if items.still_streaming(marker) and not any(delta.folded for delta in deltas):
        newer = [delta for delta in deltas if delta.seq > after]
        newest = deltas[-1] if deltas else None
        started = items.started_message(marker).created_at
        last_activity = newest.at if newest is not None and newest.at is not None else started
        # From the start, the text the deltas follow too (an imported message's; "" else).
        base = await _base_text(table, marker) if after <= 0 else ""
        return StreamState(
            conversation_id=conversation_id,
            message_id=message_id,
            text=base + "".join(delta.text for delta in newer),
            seq=newest.seq if newest is not None else max(after, 0),
            status=stream_status(table, last_activity, now),
            active_at=last_activity,
        )
    return await _finished_state(table, conversation_id, marker, deltas, after)


async def _base_text(table: ChatTable, marker: Item) -> str:
    """The text a streaming message started with: read only when there is one."""
    if items.base_length(marker) == (0, 0):
        return ""
    key = (marker["PK"]["S"], items.marked_position(marker).sort_key())
    async with table.guard():
        found = await batch_get(table, [key])
        if key not in found:
            return ""
        (started,) = await filled_in(table.content, [items.message_from_attributes(found[key])])
    return started.content


async def _finished_state(
    table: ChatTable, conversation_id: str, marker: Item, deltas: list[DeltaRecord], after: int
) -> StreamState | None:
    message_id = marker["messageId"]["S"]
    key = (marker["PK"]["S"], items.marked_position(marker).sort_key())
    async with table.guard():
        found = await batch_get(table, [key])
        if key not in found:
            return None
        (final,) = await filled_in(table.content, [items.message_from_attributes(found[key])])
    at_after = next((delta for delta in deltas if delta.seq == after), None)
    closing = next((delta for delta in reversed(deltas) if delta.folded), None)
    replaced = closing is None or closing.replaced or (after > 0 and at_after is None)
    offset = 0 if after <= 0 or at_after is None else at_after.end
    return StreamState(
        conversation_id=conversation_id,
        message_id=message_id,
        text=final.content if replaced else final.content[offset:],
        seq=closing.seq - 1 if closing is not None else max(after, 0),
        status=final.status,
        final=final,
        replaced=replaced,
    )

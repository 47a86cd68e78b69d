"""Messages: CONV#<conversationId> / MSG#<timestamp>#<messageId>, in time order.

Adding messages is ONE TransactWriteItems: per message the message item and a MSGID#<id>
marker (both only if absent), plus the conversation update (only if the caller's conversation
exists). The marker is what makes a client's retry idempotent: a retry gets a new server
timestamp, so the message's own sort key would not collide.

Timestamps only move forward within a conversation: the update requires `updatedAt < :first`,
and a clock that lags the last write retries from just after it. So a message added later
always sorts later, and a reader paging towards the newest message never misses one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from graphql_api.errors import ConflictError, NotFoundError, UnavailableError, ValidationError

from . import items, keys
from .batch import batch_get
from .checks import CONVERSATION_HEADROOM, checked_id, checked_user, ensure_fits
from .client import ChatTable
from .paging import SortedRange, read_page
from .records import (
    ONE_TICK,
    ROLES,
    MessagePosition,
    MessageRecord,
    NewMessage,
    Page,
    format_timestamp,
    parse_timestamp,
)
from .transaction import TRANSACTION_LIMIT, Transaction, TransactionCancelled

# Two actions per message plus the conversation update must fit in one transaction.
MAX_MESSAGES_PER_ADD: Final = (TRANSACTION_LIMIT - 1) // 2
_CONVERSATION: Final = "conversation"


def _message_action(message_id: str) -> tuple[str, str]:
    return ("message", message_id)


def _marker_action(message_id: str) -> tuple[str, str]:
    return ("marker", message_id)


MAX_ROUNDS: Final = 64


async def add_messages(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    messages: Sequence[NewMessage],
) -> list[MessageRecord]:
    """Store `messages` atomically, in order; ids already stored return the stored message.

    Raises NotFoundError when the conversation is missing or not the caller's, and
    ConflictError when a message id was already used for a different message.
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    ordered = _with_ids(messages)
    pending = list(ordered)
    stored: dict[str, MessageRecord] = {}
    not_before: datetime | None = None
    conflicts = 0
    async with table.guard():
        # A round that loses the clock race learns the conversation's time and goes again at
        # once; concurrent adds to one conversation then settle in a few rounds, bounded by
        # the guard's deadline. Transaction conflicts back off, as throttling does.
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            now = table.clock()
            start = now if not_before is None else max(now, not_before)
            records = _records(user_id, conversation_id, pending, start)
            try:
                await _add_transaction(table, user_id, conversation_id, records).commit()
            except TransactionCancelled as cancelled:
                retried, not_before = await _settle(table, records, cancelled, stored)
                pending = [new for new in pending if new.id not in retried]
                if cancelled.conflicted:
                    if conflicts == table.max_attempts:
                        break
                    await table.backoff(conflicts)
                    conflicts += 1
                continue
            stored.update((record.id, record) for record in records)
            pending = []
        if pending:
            raise UnavailableError("the conversation is too busy; try again")
    return [stored[str(new.id)] for new in ordered]


def _with_ids(messages: Sequence[NewMessage]) -> list[NewMessage]:
    if not messages:
        raise ValidationError("messages", "must not be empty")
    if len(messages) > MAX_MESSAGES_PER_ADD:
        raise ValidationError("messages", f"at most {MAX_MESSAGES_PER_ADD} in one call")
    result = []
    for index, new in enumerate(messages):
        if new.role not in ROLES:
            raise ValidationError(f"messages[{index}].role", "is not a known role")
        given = new.id
        message_id = str(uuid.uuid4()) if given is None else checked_id(given, field="id")
        result.append(NewMessage(**{**_fields(new), "id": message_id}))
    if len({new.id for new in result}) != len(result):
        raise ValidationError("messages", "contain the same id twice")
    return result


def _fields(new: NewMessage) -> dict[str, Any]:
    return {name: getattr(new, name) for name in NewMessage.__slots__}


def _records(
    user_id: str, conversation_id: str, pending: Sequence[NewMessage], start: datetime
) -> list[MessageRecord]:
    # One tick apart, so a batch keeps its order (the user's message before the answer).
    return [
        MessageRecord(
            id=str(new.id),
            conversation_id=conversation_id,
            user_id=user_id,
            role=new.role,
            content=new.content,
            created_at=start + index * ONE_TICK,
            model_id=new.model_id,
            is_error=new.is_error,
            error_message=new.error_message,
        )
        for index, new in enumerate(pending)
    ]


def _add_transaction(
    table: ChatTable, user_id: str, conversation_id: str, records: Sequence[MessageRecord]
) -> Transaction:
    transaction = Transaction(table)
    first, last = format_timestamp(records[0].created_at), format_timestamp(records[-1].created_at)
    transaction.update(
        _CONVERSATION,
        items.conversation_key(user_id, conversation_id),
        update=(
            "SET updatedAt = :last, GSI1SK = :recency, lastMessage = :preview "
            "ADD messageCount :count"
        ),
        # Existence of the caller's own item is the ownership check; the time check keeps
        # message order equal to commit order.
        condition="attribute_exists(PK) AND updatedAt < :first",
        values={
            ":first": {"S": first},
            ":last": {"S": last},
            ":recency": items.recency(last, conversation_id),
            ":preview": {"M": items.message_attributes(records[-1])},
            ":count": {"N": str(len(records))},
        },
        return_old=True,
    )
    for record in records:
        item = items.message_item(record)
        # The conversation item also carries the newest message, beside its own attributes.
        ensure_fits(item, field="content", reserve=CONVERSATION_HEADROOM)
        condition = "attribute_not_exists(PK)"
        transaction.put(_message_action(record.id), item, condition=condition)
        transaction.put(
            _marker_action(record.id),
            items.marker_item(record),
            condition=condition,
            return_old=True,
        )
    return transaction


async def _settle(
    table: ChatTable,
    records: Sequence[MessageRecord],
    cancelled: TransactionCancelled,
    stored: dict[str, MessageRecord],
) -> tuple[set[str], datetime | None]:
    """Learn from a cancelled add: which ids are already stored, and where time must resume.

    Returns the ids found stored (recorded into `stored`) and the earliest timestamp the next
    attempt may use, if the conversation's clock was ahead of ours.
    """
    conversation = cancelled.current(_CONVERSATION)
    if cancelled.failed(_CONVERSATION) and conversation is None:
        # Checked first: another user's conversation must look exactly like a missing one,
        # whatever the message markers in its partition would say.
        raise NotFoundError("conversation not found")
    not_before = None
    if conversation is not None:
        not_before = parse_timestamp(conversation["updatedAt"]["S"]) + ONE_TICK
    taken = {
        record.id: items.marked_message_sk(marker)
        for record in records
        if (marker := cancelled.current(_marker_action(record.id))) is not None
    }
    if taken:
        partition = keys.conversation_partition(records[0].conversation_id)
        found = await batch_get(table, [(partition, sk) for sk in taken.values()])
        for record in records:
            if record.id not in taken:
                continue
            item = found.get((partition, taken[record.id]))
            if item is None:
                raise UnavailableError("a stored message is not readable yet; try again")
            existing = items.message_from_attributes(item)
            if not existing.same_payload(_as_new(record)):
                raise ConflictError(f"message id {record.id} was already used for another message")
            stored[record.id] = existing
    return set(taken), not_before


def _as_new(record: MessageRecord) -> NewMessage:
    return NewMessage(
        id=record.id,
        role=record.role,
        content=record.content,
        model_id=record.model_id,
        is_error=record.is_error,
        error_message=record.error_message,
    )


async def list_messages(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    limit: int,
    cursor: MessagePosition | None = None,
    forward: bool = False,
) -> Page[MessageRecord]:
    """Messages in time order. `forward=False` (the default) reads the newest `limit` first.

    Only the caller's messages are ever returned: every message carries its owner, and the
    query filters on it, so a colliding or guessed id yields an empty page.
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    span = SortedRange(
        partition_attribute="PK",
        partition_value=keys.conversation_partition(conversation_id),
        sort_attribute="SK",
        low=keys.MESSAGES_LOW,
        high=keys.MESSAGES_HIGH,
        item_filter=("#owner = :owner", {"#owner": "userId"}, {":owner": {"S": user_id}}),
    )
    async with table.guard():
        page = await read_page(
            table,
            span,
            cursor=None if cursor is None else cursor.sort_key(),
            limit=limit,
            forward=forward,
            display_ascending=True,
        )
    return Page(
        items=[items.message_from_attributes(item) for item in page.items],
        has_previous=page.has_previous,
        has_next=page.has_next,
    )

"""Imports against a real endpoint: ids, tree, times and order kept; idempotent; parts = one."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.errors import ConflictError, ValidationError
from graphql_api.settings import ContentSettings, DynamoDBSettings
from graphql_api.storage.changes import current_version, read_changes
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.content import filled_in, open_content_store
from graphql_api.storage.conversations import get_threads, list_conversations
from graphql_api.storage.exports import all_messages
from graphql_api.storage.imports import (
    MAX_MESSAGES_PER_TRANSACTION,
    ConversationImport,
    MessageImport,
    import_conversation,
)
from graphql_api.storage.items import PREVIEW_CHARS
from graphql_api.storage.messages import add_messages, set_active_branch
from graphql_api.storage.records import ONE_TICK, UNSET, Feedback, MessageRecord, NewMessage
from graphql_api.storage.threads import list_messages
from tests.conftest import LOCAL_CREDENTIALS, REGION
from tests.counting import RequestCounter
from tests.factories import a_conversation, own_table
from tests.import_builders import (
    EDITED,
    START,
    conversation_id,
    imported,
    long_branchy_shape,
    message_id,
    name_of,
)


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    async with own_table(dynamodb_client, purpose="imports") as name:
        yield name


async def stored(table: ChatTable, user_id: str, cid: str) -> list[MessageRecord]:
    return [m async for m in all_messages(table, user_id=user_id, conversation_id=cid)]


async def path_to(table: ChatTable, user_id: str, cid: str, leaf: MessageRecord) -> list[str]:
    page = await list_messages(
        table, user_id=user_id, conversation_id=cid, limit=100, leaf=leaf.position
    )
    return [message.id for message in page.items]


async def test_an_import_keeps_ids_times_branches_and_the_conversation_fields(
    chat_table: ChatTable, user_id: str
) -> None:
    updated_at = START + timedelta(hours=5)
    conversation = imported("keeps", EDITED, updated_at=updated_at, active_leaf="a2b")

    outcome = await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    record = outcome.conversation
    assert (outcome.created, outcome.added, outcome.skipped) == (True, 7, 0)
    assert (record.title, record.model_id) == ("Imported", "gpt-4o")
    assert (record.created_at, record.updated_at) == (START, updated_at)
    assert (record.message_count, record.segment_count) == (7, 3)
    assert record.active_leaf is not None
    assert record.active_leaf.message_id == message_id("keeps", "a2b")
    assert record.last_message is not None
    assert record.last_message.content == "a2b: keeps"
    messages = {m.id: m for m in await stored(chat_table, user_id, conversation.id)}
    for given in conversation.messages:
        kept = messages[given.id]
        assert (kept.parent_id, kept.role, kept.content, kept.created_at, kept.model_id) == (
            given.parent_id,
            given.role,
            given.content,
            given.created_at,
            given.model_id,
        )
    # Every branch reads back whole, along its own path.
    by_name = {name_of("keeps", EDITED, m.id): m for m in messages.values()}
    for leaf, path in {
        "a2": ["q1", "a1", "q2", "a2"],
        "a2b": ["q1", "a1", "q2", "a2b"],
        "a2c": ["q1", "a1", "q2b", "a2c"],
    }.items():
        read = await path_to(chat_table, user_id, conversation.id, by_name[leaf])
        assert read == [message_id("keeps", name) for name in path]
    (thread,) = await get_threads(chat_table, user_id=user_id, conversation_ids=[conversation.id])
    assert thread is not None
    assert thread.tree.siblings(by_name["a2b"]) == (by_name["a2"].id, by_name["a2b"].id)
    assert thread.tree.siblings(by_name["q2b"]) == (by_name["q2"].id, by_name["q2b"].id)


async def test_importing_again_changes_nothing_and_logs_no_change(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = imported("again", EDITED)
    first = await import_conversation(chat_table, user_id=user_id, conversation=conversation)
    version = await current_version(chat_table, user_id=user_id)

    second = await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    assert (second.created, second.added, second.skipped) == (False, 0, 7)
    assert second.conversation == first.conversation
    assert await current_version(chat_table, user_id=user_id) == version


def _shape_of(records: list[MessageRecord], namespace: str, shape: Any) -> list[tuple[Any, ...]]:
    """What a stored conversation is, whatever its ids: each message by name, where it sits
    and when, in key order."""
    return [
        (name_of(namespace, shape, m.id), m.segment, m.depth, m.created_at - START) for m in records
    ]


async def test_a_conversation_imported_in_parts_equals_one_imported_at_once(
    chat_table: ChatTable, user_id: str
) -> None:
    shape = long_branchy_shape(120)
    whole = imported("whole", shape, active_leaf="m60")
    parts = imported("parts", shape, active_leaf="m60")
    assert len(whole.messages) > 2 * MAX_MESSAGES_PER_TRANSACTION

    at_once = await import_conversation(chat_table, user_id=user_id, conversation=whole)
    for start in range(0, len(parts.messages), 20):
        piece = dataclasses.replace(parts, messages=parts.messages[start : start + 20])
        in_parts = await import_conversation(chat_table, user_id=user_id, conversation=piece)

    assert _shape_of(await stored(chat_table, user_id, whole.id), "whole", shape) == _shape_of(
        await stored(chat_table, user_id, parts.id), "parts", shape
    )
    one, other = at_once.conversation, in_parts.conversation
    assert (one.message_count, one.segment_count, one.updated_at) == (
        other.message_count,
        other.segment_count,
        other.updated_at,
    )
    assert one.active_leaf is not None
    assert other.active_leaf is not None
    assert name_of("whole", shape, one.active_leaf.message_id) == name_of(
        "parts", shape, other.active_leaf.message_id
    )
    threads = await get_threads(chat_table, user_id=user_id, conversation_ids=[whole.id, parts.id])
    assert threads[0] is not None
    assert threads[1] is not None
    assert threads[0].tree.segments == threads[1].tree.segments


async def test_each_transaction_holds_at_most_its_share_of_messages_and_logs_one_change(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    shape = [("m0", None), *((f"m{i}", f"m{i - 1}") for i in range(1, 100))]
    conversation = imported("windows", shape)
    before = await current_version(chat_table, user_id=user_id)
    request_counter.reset()

    await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    transactions = -(-100 // MAX_MESSAGES_PER_TRANSACTION)
    assert request_counter.operations.count("TransactWriteItems") == transactions
    page = await read_changes(chat_table, user_id=user_id, after=before, limit=10)
    assert [change.kind for change in page.changes] == ["CONVERSATION_CREATED"] + [
        "MESSAGES_ADDED"
    ] * (transactions - 1)
    assert sum(len(change.messages) for change in page.changes) == 100


async def test_updated_at_orders_the_list_as_on_the_device(
    chat_table: ChatTable, user_id: str
) -> None:
    middle = imported("middle", EDITED, updated_at=START + timedelta(days=1))
    earliest = imported("earliest", EDITED, start=START - timedelta(days=30))
    latest = imported("latest", EDITED, updated_at=START + timedelta(days=2))
    for conversation in (middle, earliest, latest):
        await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    page = await list_conversations(chat_table, user_id=user_id, limit=10)

    assert [c.id for c in page.items] == [latest.id, middle.id, earliest.id]
    # Without updatedAt, the newest message's time places it.
    assert page.items[2].updated_at == earliest.messages[-1].created_at


async def test_a_child_not_later_than_its_parent_moves_to_just_after_it(
    chat_table: ChatTable, user_id: str
) -> None:
    base = imported("times", [("q", None), ("a", "q"), ("b", "q")])
    q, a, b = base.messages
    conversation = dataclasses.replace(
        base,
        messages=[
            q,
            dataclasses.replace(a, created_at=q.created_at),
            dataclasses.replace(b, created_at=q.created_at - timedelta(days=1)),
        ],
    )

    await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    times = {m.id: m.created_at for m in await stored(chat_table, user_id, conversation.id)}
    assert times[a.id] == times[b.id] == q.created_at + ONE_TICK


async def test_another_users_conversation_id_is_a_conflict_and_changes_nothing(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = imported("taken", EDITED)
    await import_conversation(chat_table, user_id=user_id, conversation=conversation)
    intruder = f"{user_id}-other"

    with pytest.raises(ConflictError):
        await import_conversation(chat_table, user_id=intruder, conversation=conversation)

    assert await current_version(chat_table, user_id=intruder) == 0
    assert len(await stored(chat_table, user_id, conversation.id)) == 7


async def test_a_parent_neither_stored_nor_given_before_is_refused(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = imported("orphan", [("q", None), ("a", "q")])
    q, a = conversation.messages

    with pytest.raises(ValidationError) as before:
        await import_conversation(
            chat_table,
            user_id=user_id,
            conversation=dataclasses.replace(conversation, messages=[a, q]),
        )
    with pytest.raises(ValidationError) as missing:
        await import_conversation(
            chat_table,
            user_id=user_id,
            conversation=dataclasses.replace(conversation, messages=[a]),
        )

    assert before.value.field == "messages[0].parentId"
    assert missing.value.field == "parentId"


async def test_several_first_messages_are_alternatives_at_the_root(
    chat_table: ChatTable, user_id: str
) -> None:
    shape = [("q", None), ("a", "q"), ("q2", None), ("a2", "q2")]
    conversation = imported("roots", shape)

    outcome = await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    (thread,) = await get_threads(chat_table, user_id=user_id, conversation_ids=[conversation.id])
    assert thread is not None
    messages = {m.id: m for m in await stored(chat_table, user_id, conversation.id)}
    q, q2 = messages[message_id("roots", "q")], messages[message_id("roots", "q2")]
    assert thread.tree.siblings(q2) == (q.id, q2.id)
    assert outcome.conversation.active_leaf is not None
    assert outcome.conversation.active_leaf.message_id == message_id("roots", "a2")
    leaf = messages[message_id("roots", "a2")]
    assert await path_to(chat_table, user_id, conversation.id, leaf) == [q2.id, leaf.id]


async def test_an_import_into_a_live_conversation_never_moves_it_back(
    chat_table: ChatTable, user_id: str
) -> None:
    live = await a_conversation(chat_table, user_id=user_id)
    (first,) = await add_messages(
        chat_table,
        user_id=user_id,
        conversation_id=live.id,
        messages=[NewMessage(role="user", content="now")],
    )
    old = MessageImport(
        id=message_id("live", "old"),
        parent_id=first.id,
        role="assistant",
        content="from long ago",
        created_at=START,
    )
    header = ConversationImport(
        id=live.id, title="other title", model_id=None, created_at=START, messages=[old]
    )

    outcome = await import_conversation(chat_table, user_id=user_id, conversation=header)
    (after,) = await add_messages(
        chat_table,
        user_id=user_id,
        conversation_id=live.id,
        messages=[NewMessage(role="user", content="next")],
    )

    assert outcome.conversation.title == live.title
    assert outcome.conversation.created_at == live.created_at
    (imported_message,) = [m for m in await stored(chat_table, user_id, live.id) if m.id == old.id]
    assert imported_message.created_at == first.created_at + ONE_TICK
    assert outcome.conversation.updated_at == imported_message.created_at
    assert after.parent_id == old.id
    assert after.created_at > imported_message.created_at


FLAT = [(f"m{index}", f"m{index - 1}" if index else None) for index in range(10)]


def flat(conversation: ConversationImport) -> ConversationImport:
    """`conversation` as a flat list: every message given without its parent."""
    return dataclasses.replace(
        conversation,
        messages=[dataclasses.replace(m, parent_id=UNSET) for m in conversation.messages],
    )


async def test_a_flat_list_is_one_thread_in_order_and_a_later_part_continues_it(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    given = flat(imported("flat", FLAT))
    linked = imported("linked", FLAT)

    first = await import_conversation(
        chat_table,
        user_id=user_id,
        conversation=dataclasses.replace(given, messages=given.messages[:5]),
    )
    request_counter.reset()
    second = await import_conversation(
        chat_table,
        user_id=user_id,
        conversation=dataclasses.replace(given, messages=given.messages[5:]),
    )
    continued = list(request_counter.operations)
    await import_conversation(chat_table, user_id=user_id, conversation=linked)

    assert first.conversation.active_leaf is not None
    assert first.conversation.active_leaf.message_id == message_id("flat", "m4")
    assert (first.conversation.message_count, second.conversation.message_count) == (5, 10)
    records = await stored(chat_table, user_id, given.id)
    leaf = next(m for m in records if m.id == message_id("flat", "m9"))
    assert await path_to(chat_table, user_id, given.id, leaf) == [m.id for m in given.messages]
    # Placed as the same list with every parent named, in one call.
    assert _shape_of(records, "flat", FLAT) == _shape_of(
        await stored(chat_table, user_id, linked.id), "linked", FLAT
    )
    # The active leaf came with the conversation's item: nothing is read for it.
    assert continued == ["BatchGetItem", "TransactWriteItems"]


async def test_a_flat_list_over_several_transactions_resumes_where_it_stopped(
    chat_table: ChatTable, user_id: str
) -> None:
    shape = [
        (f"m{i}", f"m{i - 1}" if i else None) for i in range(MAX_MESSAGES_PER_TRANSACTION + 13)
    ]
    given = flat(imported("flat-long", shape))
    linked = imported("linked-long", shape)

    # Stopped after the first 50; then the whole list again, in one call of two transactions
    # whose first holds only messages stored already.
    partial = dataclasses.replace(given, messages=given.messages[:50])
    await import_conversation(chat_table, user_id=user_id, conversation=partial)
    outcome = await import_conversation(chat_table, user_id=user_id, conversation=given)
    await import_conversation(chat_table, user_id=user_id, conversation=linked)

    assert (outcome.added, outcome.skipped) == (len(shape) - 50, 50)
    assert _shape_of(await stored(chat_table, user_id, given.id), "flat-long", shape) == (
        _shape_of(await stored(chat_table, user_id, linked.id), "linked-long", shape)
    )


async def test_a_flat_list_imported_again_changes_nothing(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = flat(imported("flat-again", FLAT))
    first = await import_conversation(chat_table, user_id=user_id, conversation=conversation)
    version = await current_version(chat_table, user_id=user_id)

    again = await import_conversation(chat_table, user_id=user_id, conversation=conversation)
    # A part of it again, whose first message is not the active leaf's child.
    part = dataclasses.replace(conversation, messages=conversation.messages[4:7])
    after = await import_conversation(chat_table, user_id=user_id, conversation=part)

    assert (again.created, again.added, again.skipped) == (False, 0, 10)
    assert again.conversation == first.conversation == after.conversation
    assert await current_version(chat_table, user_id=user_id) == version
    assert len(await stored(chat_table, user_id, conversation.id)) == 10


async def test_a_flat_list_continues_the_active_branch_of_a_stored_conversation(
    chat_table: ChatTable, user_id: str
) -> None:
    branchy = imported("flat-onto", EDITED)
    await import_conversation(chat_table, user_id=user_id, conversation=branchy)
    a2 = message_id("flat-onto", "a2")
    await set_active_branch(chat_table, user_id=user_id, conversation_id=branchy.id, message_id=a2)
    more = flat(imported("flat-onto", [("q3", None), ("a3", "q3")], start=START))
    q3, a3 = more.messages

    outcome = await import_conversation(
        chat_table,
        user_id=user_id,
        conversation=dataclasses.replace(branchy, messages=more.messages),
    )

    messages = {m.id: m for m in await stored(chat_table, user_id, branchy.id)}
    assert (messages[q3.id].parent_id, messages[a3.id].parent_id) == (a2, q3.id)
    # Older than the branch it continues, so moved to just after it, as a child is.
    assert messages[q3.id].created_at == messages[a2].created_at + ONE_TICK
    assert outcome.conversation.active_leaf is not None
    assert outcome.conversation.active_leaf.message_id == a3.id
    assert outcome.conversation.message_count == 9


async def test_a_flat_list_into_a_conversation_without_messages_starts_it(
    chat_table: ChatTable, user_id: str
) -> None:
    empty = await a_conversation(chat_table, user_id=user_id)
    given = flat(imported("flat-empty", FLAT[:3]))

    outcome = await import_conversation(
        chat_table, user_id=user_id, conversation=dataclasses.replace(given, id=empty.id)
    )

    records = await stored(chat_table, user_id, empty.id)
    assert [(m.id, m.parent_id, m.segment, m.depth) for m in records] == [
        (m.id, None if index == 0 else given.messages[index - 1].id, 0, index + 1)
        for index, m in enumerate(given.messages)
    ]
    assert outcome.conversation.message_count == 3


async def test_feedback_and_errors_are_imported_with_the_message(
    chat_table: ChatTable, user_id: str
) -> None:
    rated = Feedback(rating="down", comment="wrong", updated_at=START + timedelta(days=1))
    conversation = ConversationImport(
        id=conversation_id("feedback"),
        title="Rated",
        model_id=None,
        created_at=START,
        tags=("work",),
        pinned=True,
        messages=[
            MessageImport(
                id=message_id("feedback", "q"),
                parent_id=None,
                role="user",
                content="q",
                created_at=START + ONE_TICK,
            ),
            MessageImport(
                id=message_id("feedback", "a"),
                parent_id=message_id("feedback", "q"),
                role="assistant",
                content="partial",
                created_at=START + 2 * ONE_TICK,
                is_error=True,
                error_message="network lost",
                feedback=rated,
            ),
        ],
    )

    outcome = await import_conversation(chat_table, user_id=user_id, conversation=conversation)

    answer = (await stored(chat_table, user_id, conversation.id))[-1]
    assert (answer.is_error, answer.error_message, answer.feedback) == (True, "network lost", rated)
    assert (outcome.conversation.pinned, outcome.conversation.tags) == (True, ("work",))


async def test_a_message_too_large_for_an_item_is_refused_before_anything_is_written(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = imported("large", [("q", None)])
    (q,) = conversation.messages
    too_large = dataclasses.replace(
        conversation, messages=[dataclasses.replace(q, content="x" * 420_000)]
    )

    with pytest.raises(ValidationError):
        await import_conversation(chat_table, user_id=user_id, conversation=too_large)

    assert await current_version(chat_table, user_id=user_id) == 0


# --- content too large for an item ---------------------------------------------------------


@pytest_asyncio.fixture
async def with_bucket(
    chat_table: ChatTable, content_bucket: ContentSettings
) -> AsyncIterator[ChatTable]:
    dynamodb = DynamoDBSettings(table_name=chat_table.name, region=REGION)
    async with open_content_store(content_bucket, dynamodb, credentials=LOCAL_CREDENTIALS) as store:
        yield dataclasses.replace(chat_table, content=store)


async def test_a_large_message_is_imported_into_the_content_bucket_and_reads_back_whole(
    with_bucket: ChatTable, user_id: str
) -> None:
    base = imported("large-content", [("q", None), ("a", "q")])
    large = "€" * 400_000  # 1.2 MB of UTF-8
    conversation = dataclasses.replace(
        base, messages=[base.messages[0], dataclasses.replace(base.messages[1], content=large)]
    )

    first = await import_conversation(with_bucket, user_id=user_id, conversation=conversation)
    again = await import_conversation(with_bucket, user_id=user_id, conversation=conversation)

    (kept,) = [m for m in await stored(with_bucket, user_id, conversation.id) if m.content_ref]
    assert len(kept.content) == PREVIEW_CHARS
    assert with_bucket.content is not None
    assert await with_bucket.content.get(kept.content_ref or "") == large
    (whole,) = await filled_in(with_bucket.content, [kept])
    assert whole.content == large
    assert first.conversation.last_message is not None
    assert first.conversation.last_message.content == large[:PREVIEW_CHARS]
    assert (again.added, again.skipped) == (0, 2)

"""Messages against a real endpoint: atomic adds, idempotent retries, counts, time-order paging."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from graphql_api.errors import ConflictError, NotFoundError, ValidationError
from graphql_api.storage import keys
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import get_conversation
from graphql_api.storage.items import (
    message_from_attributes,
)
from graphql_api.storage.messages import MAX_MESSAGES_PER_ADD, add_messages, list_messages
from graphql_api.storage.records import (
    ONE_TICK,
    ConversationRecord,
    MessageRecord,
    NewMessage,
    Page,
    format_timestamp,
)
from tests.counting import RequestCounter
from tests.factories import (
    FIXED_INSTANT,
    a_conversation,
    new_id,
    new_message,
    own_table,
    seed_messages,
    stored_item,
    stored_messages,
)


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """This module's own table, so its transactions stay fast (see factories.own_table)."""
    async with own_table(dynamodb_client, purpose="messages") as name:
        yield name


async def add_one(
    table: ChatTable, conversation: ConversationRecord, new: NewMessage
) -> MessageRecord:
    (stored,) = await add_messages(
        table, user_id=conversation.user_id, conversation_id=conversation.id, messages=[new]
    )
    return stored


async def count_and_stored(table: ChatTable, conversation: ConversationRecord) -> tuple[int, int]:
    """(messageCount as the conversation says, messages actually in its partition)."""
    current = await get_conversation(
        table, user_id=conversation.user_id, conversation_id=conversation.id
    )
    assert current is not None
    return current.message_count, len(await stored_messages(table, conversation_id=conversation.id))


# --- adding one


async def test_adding_a_message_is_one_transaction_that_stores_it_in_time_order_keys(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    message_id = new_id()
    request_counter.reset()

    stored = await add_one(
        chat_table,
        conversation,
        new_message("Hi there", role="assistant", message_id=message_id, model_id="m"),
    )

    assert request_counter.operations == ["TransactWriteItems"]
    timestamp = format_timestamp(stored.created_at)
    assert timestamp.endswith("Z")
    item = await stored_item(chat_table, f"CONV#{conversation.id}", f"MSG#{timestamp}#{message_id}")
    assert item is not None
    assert message_from_attributes(item) == stored
    assert (stored.id, stored.role, stored.content, stored.model_id, stored.user_id) == (
        message_id,
        "assistant",
        "Hi there",
        "m",
        user_id,
    )
    current = await get_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    assert current is not None
    assert (current.message_count, current.last_message, current.updated_at) == (
        1,
        stored,
        stored.created_at,
    )


async def test_the_server_makes_a_message_id_when_the_client_sends_none(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)

    first = await add_one(chat_table, conversation, new_message("a"))
    second = await add_one(chat_table, conversation, new_message("a"))

    assert first.id != second.id
    assert await count_and_stored(chat_table, conversation) == (2, 2)


async def test_adding_to_a_missing_conversation_is_not_found_and_writes_nothing(
    chat_table: ChatTable, user_id: str
) -> None:
    missing = new_id()

    with pytest.raises(NotFoundError):
        await add_messages(
            chat_table, user_id=user_id, conversation_id=missing, messages=[new_message()]
        )

    assert await stored_messages(chat_table, conversation_id=missing) == []


async def test_a_retry_with_the_same_id_later_returns_the_stored_message_counted_once(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    retried = new_message("question", message_id=new_id())
    original = await add_one(chat_table, conversation, retried)
    await add_one(chat_table, conversation, new_message("in between"))

    again = await add_one(chat_table, conversation, retried)

    assert again == original
    assert await count_and_stored(chat_table, conversation) == (2, 2)


async def test_ten_concurrent_adds_of_one_id_store_one_message(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    duplicate = new_message("once", message_id=new_id())

    results = await asyncio.gather(
        *(add_one(chat_table, conversation, duplicate) for _ in range(10))
    )

    assert len(set(results)) == 1
    assert await count_and_stored(chat_table, conversation) == (1, 1)


async def test_reusing_a_message_id_for_other_content_is_a_conflict_that_changes_nothing(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    message_id = new_id()
    original = await add_one(chat_table, conversation, new_message("first", message_id=message_id))

    with pytest.raises(ConflictError):
        await add_one(chat_table, conversation, new_message("different", message_id=message_id))

    (item,) = await stored_messages(chat_table, conversation_id=conversation.id)
    assert message_from_attributes(item) == original
    assert await count_and_stored(chat_table, conversation) == (1, 1)


async def test_fifty_concurrent_adds_leave_the_count_equal_to_the_messages_stored(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)

    added = await asyncio.gather(
        *(add_one(chat_table, conversation, new_message(f"m{n}")) for n in range(50))
    )

    assert await count_and_stored(chat_table, conversation) == (50, 50)
    listed = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=50
    )
    assert sorted(m.id for m in listed.items) == sorted(m.id for m in added)
    # Commit order is time order: the newest message is the conversation's preview.
    current = await get_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    assert current is not None
    assert current.last_message == listed.items[-1]


# --- adding several


async def test_several_messages_are_added_atomically_in_the_order_given(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    batch = [new_message("question"), new_message("answer", role="assistant"), new_message("more")]
    request_counter.reset()

    stored = await add_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, messages=batch
    )

    assert request_counter.operations == ["TransactWriteItems"]
    assert [m.content for m in stored] == ["question", "answer", "more"]
    assert stored[0].created_at < stored[1].created_at < stored[2].created_at
    listed = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=10
    )
    assert listed.items == stored
    assert await count_and_stored(chat_table, conversation) == (3, 3)


async def test_a_batch_retried_after_partly_landing_stores_only_the_new_ones(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    landed = new_message("landed", message_id=new_id())
    first = await add_one(chat_table, conversation, landed)

    stored = await add_messages(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        messages=[landed, new_message("new one")],
    )

    assert stored[0] == first
    assert stored[1].content == "new one"
    assert await count_and_stored(chat_table, conversation) == (2, 2)


async def test_concurrent_copies_of_one_batch_store_it_once(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    batch = [new_message(f"m{n}", message_id=new_id()) for n in range(3)]

    results = await asyncio.gather(
        *(
            add_messages(
                chat_table, user_id=user_id, conversation_id=conversation.id, messages=batch
            )
            for _ in range(5)
        )
    )

    assert all(result == results[0] for result in results)
    assert [m.id for m in results[0]] == [new.id for new in batch]
    assert await count_and_stored(chat_table, conversation) == (3, 3)


async def test_more_than_the_maximum_per_add_is_refused_and_nothing_is_written(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    request_counter.reset()

    with pytest.raises(ValidationError) as raised:
        await add_messages(
            chat_table,
            user_id=user_id,
            conversation_id=conversation.id,
            messages=[new_message(f"m{n}") for n in range(MAX_MESSAGES_PER_ADD + 1)],
        )

    assert raised.value.field == "messages"
    assert request_counter.count == 0
    assert await count_and_stored(chat_table, conversation) == (0, 0)


async def test_exactly_the_maximum_per_add_fits_in_one_transaction(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    request_counter.reset()

    await add_messages(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        messages=[new_message(f"m{n}") for n in range(MAX_MESSAGES_PER_ADD)],
    )

    assert request_counter.operations == ["TransactWriteItems"]
    assert await count_and_stored(chat_table, conversation) == (
        MAX_MESSAGES_PER_ADD,
        MAX_MESSAGES_PER_ADD,
    )


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        pytest.param([], "messages", id="empty"),
        pytest.param(
            [new_message("a", message_id="11111111-1111-4111-8111-111111111111")] * 2,
            "messages",
            id="same id twice",
        ),
        pytest.param([new_message(message_id="nope")], "id", id="id not a uuid"),
        pytest.param([NewMessage(role="wizard", content="x")], "messages[0].role", id="role"),  # type: ignore[arg-type]
    ],
)
async def test_invalid_batches_are_refused_naming_the_field_before_writing(
    chat_table: ChatTable,
    user_id: str,
    request_counter: RequestCounter,
    messages: list[NewMessage],
    field: str,
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    request_counter.reset()

    with pytest.raises(ValidationError) as raised:
        await add_messages(
            chat_table, user_id=user_id, conversation_id=conversation.id, messages=messages
        )

    assert raised.value.field == field
    assert request_counter.count == 0


async def test_content_over_400_kb_is_refused_naming_content_before_writing(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    request_counter.reset()

    with pytest.raises(ValidationError) as raised:
        await add_messages(
            chat_table,
            user_id=user_id,
            conversation_id=conversation.id,
            messages=[new_message("small"), new_message("é" * (200 * 1024))],
        )

    assert raised.value.field == "content"
    assert request_counter.count == 0
    assert await count_and_stored(chat_table, conversation) == (0, 0)


async def test_content_just_under_the_limit_is_stored_and_read_back_whole(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    content = "x" * (380 * 1024)

    stored = await add_one(chat_table, conversation, new_message(content))

    listed = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=1
    )
    assert listed.items == [stored]
    assert listed.items[0].content == content


# --- seeded data matches what add_messages writes


async def test_seeded_messages_behave_like_added_ones_on_retry(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    conversation, seeded = await seed_messages(chat_table, conversation, 3)
    first = seeded[0]

    again = await add_one(
        chat_table, conversation, NewMessage(id=first.id, role=first.role, content=first.content)
    )
    after = await add_one(chat_table, conversation, new_message("after"))

    assert again == first
    assert after.created_at > seeded[-1].created_at
    assert await count_and_stored(chat_table, conversation) == (4, 4)


# --- time order


async def test_with_a_stopped_clock_each_message_still_gets_a_later_timestamp(
    chat_table: ChatTable, user_id: str
) -> None:
    frozen = dataclasses.replace(chat_table, clock=lambda: FIXED_INSTANT)
    conversation = await a_conversation(frozen, user_id=user_id)

    added = [await add_one(frozen, conversation, new_message(f"m{n}")) for n in range(4)]
    batch = await add_messages(
        frozen,
        user_id=user_id,
        conversation_id=conversation.id,
        messages=[new_message("b0"), new_message("b1")],
    )

    assert [m.created_at for m in [*added, *batch]] == [
        FIXED_INSTANT + n * ONE_TICK for n in range(1, 7)
    ]


async def test_messages_of_different_conversations_may_share_an_instant(
    chat_table: ChatTable, user_id: str
) -> None:
    frozen = dataclasses.replace(chat_table, clock=lambda: FIXED_INSTANT - timedelta(days=1))
    first, second = [await a_conversation(chat_table, user_id=user_id) for _ in range(2)]

    in_first = await add_one(frozen, first, new_message("a"))
    in_second = await add_one(frozen, second, new_message("b"))

    assert in_first.created_at == in_second.created_at == FIXED_INSTANT - timedelta(days=1)


async def walk_messages(
    table: ChatTable,
    conversation: ConversationRecord,
    *,
    limit: int,
    forward: bool,
    first: Page[MessageRecord],
) -> list[Page[MessageRecord]]:
    pages = [first]
    while pages[-1].has_next if forward else pages[-1].has_previous:
        edge = pages[-1].items[-1] if forward else pages[-1].items[0]
        pages.append(
            await list_messages(
                table,
                user_id=conversation.user_id,
                conversation_id=conversation.id,
                limit=limit,
                cursor=edge.position,
                forward=forward,
            )
        )
    return pages


async def test_the_newest_fifty_come_first_and_scrolling_up_reaches_the_oldest(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation, messages = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 120
    )

    newest = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=50
    )
    pages = await walk_messages(chat_table, conversation, limit=50, forward=False, first=newest)

    assert [page.items for page in pages] == [messages[70:], messages[20:70], messages[:20]]
    assert [(page.has_previous, page.has_next) for page in pages] == [
        (True, False),
        (True, True),
        (False, True),
    ]


@pytest.mark.parametrize(
    "step", [pytest.param(ONE_TICK, id="distinct"), pytest.param(timedelta(0), id="one instant")]
)
async def test_messages_page_both_ways_without_gap_or_repeat(
    chat_table: ChatTable, user_id: str, step: timedelta
) -> None:
    conversation, messages = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 17, step=step
    )
    if step == timedelta(0):
        assert len({m.created_at for m in messages}) == 1

    first = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=5, forward=True
    )
    forward = await walk_messages(chat_table, conversation, limit=5, forward=True, first=first)
    backward = await walk_messages(
        chat_table, conversation, limit=5, forward=False, first=forward[-1]
    )

    assert [m for page in forward for m in page.items] == messages
    assert [len(page.items) for page in forward] == [5, 5, 5, 2]
    assert [(p.has_previous, p.has_next) for p in forward] == [
        (False, True),
        (True, True),
        (True, True),
        (True, False),
    ]
    assert [m for page in reversed(backward) for m in page.items] == messages
    assert [(p.has_previous, p.has_next) for p in backward][-1] == (False, True)


async def test_a_page_of_large_messages_is_filled_across_1_mb_query_responses(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    # ~300 KB each: one Query response (1 MB at most) holds three of them.
    conversation, messages = await seed_messages(
        chat_table,
        await a_conversation(chat_table, user_id=user_id),
        8,
        content="{index}" + "x" * (300 * 1024),
    )
    request_counter.reset()

    newest = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=5
    )

    assert newest.items == messages[3:]
    assert (newest.has_previous, newest.has_next) == (True, False)
    assert request_counter.operations.count("Query") > 1


async def test_a_message_added_while_paging_forward_shows_on_the_last_page(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation, messages = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 4
    )
    page = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=4, forward=True
    )
    assert not page.has_next

    added = await add_one(chat_table, conversation, new_message("late"))
    following = await list_messages(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        limit=4,
        cursor=page.items[-1].position,
        forward=True,
    )

    assert following.items == [added]
    assert (following.has_previous, following.has_next) == (True, False)
    assert page.items == messages


async def test_an_empty_conversation_lists_an_empty_page(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)

    page = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=5
    )

    assert (page.items, page.has_previous, page.has_next) == ([], False, False)


async def test_markers_and_the_owner_item_never_show_as_messages(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    added = await add_one(chat_table, conversation, new_message())

    page = await list_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, limit=10, forward=True
    )

    assert page.items == [added]
    assert await stored_item(
        chat_table, keys.conversation_partition(conversation.id), keys.message_id_sk(added.id)
    )

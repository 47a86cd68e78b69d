"""Deleting a conversation with all its messages, at size, and finishing a delete that failed."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from graphql_api.errors import ConflictError, NotFoundError, UnavailableError
from graphql_api.storage.client import ChatTable, DynamoDBClient, client_config, open_client
from graphql_api.storage.conversations import (
    count_conversations,
    create_conversation,
    delete_conversation,
    get_conversation,
    list_conversations,
)
from graphql_api.storage.messages import add_messages
from graphql_api.storage.records import ConversationRecord
from graphql_api.storage.threads import list_messages
from tests import general_paths
from tests.conftest import LOCAL_CREDENTIALS
from tests.counting import RequestCounter
from tests.factories import (
    a_conversation,
    conversation_items,
    new_message,
    own_table,
    partition_size,
    seed_messages,
)
from tests.faults import FaultProxy


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """This module's own table, so its transactions stay fast (see factories.own_table)."""
    async with own_table(dynamodb_client, purpose="delete") as name:
        yield name


BIG = 2_000


async def nothing_visible(table: ChatTable, conversation: ConversationRecord) -> None:
    user_id = conversation.user_id
    assert await get_conversation(table, user_id=user_id, conversation_id=conversation.id) is None
    listed = await list_conversations(table, user_id=user_id, limit=100)
    assert conversation.id not in [c.id for c in listed.items]


@contextlib.asynccontextmanager
async def through_proxy(
    table: ChatTable, endpoint: str
) -> AsyncIterator[tuple[ChatTable, FaultProxy]]:
    """The same table, reached through a FaultProxy by a client of its own."""
    config = client_config(
        max_pool_connections=8, connect_timeout=1, read_timeout=5, max_attempts=2
    )
    async with (
        FaultProxy(endpoint) as proxy,
        open_client(
            region=table.client.meta.region_name,
            endpoint_url=proxy.url,
            config=config,
            credentials=LOCAL_CREDENTIALS,
            fast_path=general_paths.fast_path(),
        ) as client,
    ):
        yield ChatTable(client=client, name=table.name, deadline=20.0, max_attempts=2), proxy


async def test_deleting_removes_the_conversation_and_all_of_its_2000_messages(
    chat_table: ChatTable, user_id: str
) -> None:
    kept, _ = await seed_messages(chat_table, await a_conversation(chat_table, user_id=user_id), 3)
    # Scanned before the big seed: a Scan of thousands of items is slow on moto.
    kept_items = await conversation_items(chat_table, user_id=user_id, conversation_id=kept.id)
    doomed, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), BIG
    )
    # The OWNER item, and a message plus a marker per message.
    assert await partition_size(chat_table, conversation_id=doomed.id) == 1 + 2 * BIG

    await delete_conversation(chat_table, user_id=user_id, conversation_id=doomed.id)

    assert await conversation_items(chat_table, user_id=user_id, conversation_id=doomed.id) == []
    await nothing_visible(chat_table, doomed)
    assert await count_conversations(chat_table, user_id=user_id) == 1
    after = await conversation_items(chat_table, user_id=user_id, conversation_id=kept.id)
    assert sorted(after, key=str) == sorted(kept_items, key=str)


async def test_a_delete_that_fails_part_way_hides_everything_and_a_second_call_finishes(
    chat_table: ChatTable, dynamodb_endpoint: str, user_id: str
) -> None:
    conversation, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), BIG
    )
    async with through_proxy(chat_table, dynamodb_endpoint) as (faulty, proxy):
        # Let 10 batches of deletes through, then fail every batch write from then on.
        proxy.server_error("BatchWriteItem", status=500, times=None, after=10)

        with pytest.raises(UnavailableError):
            await delete_conversation(faulty, user_id=user_id, conversation_id=conversation.id)

        assert 0 < await partition_size(chat_table, conversation_id=conversation.id) < 2 * BIG
        await nothing_visible(chat_table, conversation)
        assert await count_conversations(chat_table, user_id=user_id) == 0

    # The fault is over (another process, say, retries): the second call finishes the purge.
    await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)

    assert (
        await conversation_items(chat_table, user_id=user_id, conversation_id=conversation.id) == []
    )
    assert await count_conversations(chat_table, user_id=user_id) == 0


async def test_a_half_deleted_conversation_takes_no_messages_and_keeps_its_id(
    chat_table: ChatTable, dynamodb_endpoint: str, user_id: str
) -> None:
    conversation, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 60
    )
    async with through_proxy(chat_table, dynamodb_endpoint) as (faulty, proxy):
        proxy.server_error("BatchWriteItem", status=503, times=None, after=1)
        with pytest.raises(UnavailableError):
            await delete_conversation(faulty, user_id=user_id, conversation_id=conversation.id)
    left = await partition_size(chat_table, conversation_id=conversation.id)
    assert left > 0

    with pytest.raises(NotFoundError):
        await add_messages(
            chat_table, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
        )
    with pytest.raises(ConflictError):
        await create_conversation(
            chat_table, user_id=user_id, title="again", conversation_id=conversation.id
        )
    with pytest.raises(ConflictError):
        await create_conversation(
            chat_table, user_id=f"other-{uuid.uuid4()}", title="x", conversation_id=conversation.id
        )

    assert await partition_size(chat_table, conversation_id=conversation.id) == left
    await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    assert (
        await conversation_items(chat_table, user_id=user_id, conversation_id=conversation.id) == []
    )


async def test_deleting_twice_is_not_found_the_second_time(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)

    with pytest.raises(NotFoundError):
        await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)

    assert await count_conversations(chat_table, user_id=user_id) == 0


async def test_an_id_is_free_again_once_its_conversation_is_deleted(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    await add_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
    )
    await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    other_user = f"other-{uuid.uuid4()}"

    reborn = await create_conversation(
        chat_table, user_id=other_user, title="fresh", conversation_id=conversation.id
    )

    assert reborn.message_count == 0
    page = await list_messages(
        chat_table, user_id=other_user, conversation_id=conversation.id, limit=10
    )
    assert page.items == []


async def test_another_user_cannot_delete_and_the_owners_items_stay(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    await add_messages(
        chat_table, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
    )
    before = await conversation_items(chat_table, user_id=user_id, conversation_id=conversation.id)

    with pytest.raises(NotFoundError):
        await delete_conversation(
            chat_table, user_id=f"other-{uuid.uuid4()}", conversation_id=conversation.id
        )

    assert "BatchWriteItem" not in request_counter.operations
    after = await conversation_items(chat_table, user_id=user_id, conversation_id=conversation.id)
    assert sorted(after, key=str) == sorted(before, key=str)

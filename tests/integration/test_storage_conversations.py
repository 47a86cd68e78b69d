"""Conversations against a real endpoint: create, get, batch-get, list, rename, ownership."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from graphql_api.errors import ConflictError, NotFoundError, ValidationError
from graphql_api.storage import keys
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import (
    count_conversations,
    create_conversation,
    delete_conversation,
    get_conversation,
    get_conversations,
    list_conversations,
    update_conversation,
)
from graphql_api.storage.items import (
    conversation_from_item,
)
from graphql_api.storage.messages import add_messages, list_messages
from graphql_api.storage.records import (
    ONE_TICK,
    ConversationRecord,
    Page,
)
from tests.counting import RequestCounter
from tests.factories import (
    FIXED_INSTANT,
    a_conversation,
    conversation_items,
    new_id,
    new_message,
    own_table,
    stored_item,
)


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """This module's own table, so its transactions stay fast (see factories.own_table)."""
    async with own_table(dynamodb_client, purpose="conversations") as name:
        yield name


async def stored_conversation(table: ChatTable, record: ConversationRecord) -> ConversationRecord:
    item = await stored_item(table, keys.user_pk(record.user_id), keys.conversation_sk(record.id))
    assert item is not None
    return conversation_from_item(item)


# --- create


async def test_a_created_conversation_is_stored_under_the_users_keys(
    chat_table: ChatTable, user_id: str
) -> None:
    created = await create_conversation(
        chat_table, user_id=user_id, title="Trip", model_id="model-a"
    )

    item = await stored_item(chat_table, f"USER#{user_id}", f"CONV#{created.id}")
    assert item is not None
    assert item["GSI1PK"] == {"S": f"USER#{user_id}"}
    assert item["GSI1SK"]["S"] == f"{item['updatedAt']['S']}#{created.id}"
    assert conversation_from_item(item) == created
    assert (created.title, created.model_id, created.message_count, created.version) == (
        "Trip",
        "model-a",
        0,
        1,
    )
    assert created.created_at == created.updated_at


async def test_the_server_makes_a_uuid_when_the_client_sends_no_id(
    chat_table: ChatTable, user_id: str
) -> None:
    first = await create_conversation(chat_table, user_id=user_id, title="a")
    second = await create_conversation(chat_table, user_id=user_id, title="b")

    assert str(uuid.UUID(first.id)) == first.id
    assert first.id != second.id


async def test_the_clients_uuid_becomes_the_conversation_id(
    chat_table: ChatTable, user_id: str
) -> None:
    chosen = new_id()

    created = await create_conversation(
        chat_table, user_id=user_id, title="t", conversation_id=chosen.upper()
    )

    assert created.id == chosen
    assert await get_conversation(chat_table, user_id=user_id, conversation_id=chosen) == created


async def test_resending_a_create_returns_the_stored_conversation_and_creates_nothing(
    chat_table: ChatTable, user_id: str
) -> None:
    chosen = new_id()
    original = await create_conversation(
        chat_table, user_id=user_id, title="first", conversation_id=chosen
    )

    retried = await create_conversation(
        chat_table, user_id=user_id, title="second", conversation_id=chosen
    )

    assert retried == original
    assert await count_conversations(chat_table, user_id=user_id) == 1
    assert await stored_conversation(chat_table, original) == original


async def test_an_id_that_is_not_a_uuid_is_refused_before_writing(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    with pytest.raises(ValidationError) as raised:
        await create_conversation(
            chat_table, user_id=user_id, title="t", conversation_id="CONV#x#y"
        )

    assert raised.value.field == "id"
    assert request_counter.count == 0


async def test_a_title_over_400_kb_is_refused_naming_the_field_before_writing(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    with pytest.raises(ValidationError) as raised:
        await create_conversation(chat_table, user_id=user_id, title="x" * (400 * 1024))

    assert raised.value.field == "title"
    assert request_counter.count == 0
    assert await count_conversations(chat_table, user_id=user_id) == 0


# --- another user's id


async def test_another_user_cannot_take_an_id_in_use(chat_table: ChatTable, user_id: str) -> None:
    chosen = new_id()
    theirs = await create_conversation(
        chat_table, user_id=user_id, title="mine", conversation_id=chosen
    )
    await add_messages(
        chat_table, user_id=user_id, conversation_id=chosen, messages=[new_message("secret")]
    )
    before = await conversation_items(chat_table, user_id=user_id, conversation_id=chosen)
    intruder = f"other-{uuid.uuid4()}"

    with pytest.raises(ConflictError):
        await create_conversation(
            chat_table, user_id=intruder, title="theirs", conversation_id=chosen
        )

    after = await conversation_items(chat_table, user_id=user_id, conversation_id=chosen)
    assert sorted(after, key=str) == sorted(before, key=str)
    assert await count_conversations(chat_table, user_id=intruder) == 0
    assert await get_conversation(chat_table, user_id=intruder, conversation_id=theirs.id) is None


async def test_another_user_can_neither_read_write_count_nor_delete_a_conversation(
    chat_table: ChatTable, user_id: str
) -> None:
    owned = await create_conversation(chat_table, user_id=user_id, title="mine")
    await add_messages(
        chat_table, user_id=user_id, conversation_id=owned.id, messages=[new_message("secret")]
    )
    before = await conversation_items(chat_table, user_id=user_id, conversation_id=owned.id)
    intruder = f"other-{uuid.uuid4()}"

    assert await get_conversation(chat_table, user_id=intruder, conversation_id=owned.id) is None
    assert await get_conversations(
        chat_table, user_id=intruder, conversation_ids=[owned.id, owned.id]
    ) == [None, None]
    assert (await list_conversations(chat_table, user_id=intruder, limit=10)).items == []
    assert (
        await list_messages(chat_table, user_id=intruder, conversation_id=owned.id, limit=10)
    ).items == []
    with pytest.raises(NotFoundError):
        await update_conversation(
            chat_table, user_id=intruder, conversation_id=owned.id, title="hijacked"
        )
    with pytest.raises(NotFoundError):
        await add_messages(
            chat_table,
            user_id=intruder,
            conversation_id=owned.id,
            messages=[new_message("injected")],
        )
    with pytest.raises(NotFoundError):
        await delete_conversation(chat_table, user_id=intruder, conversation_id=owned.id)

    after = await conversation_items(chat_table, user_id=user_id, conversation_id=owned.id)
    assert sorted(after, key=str) == sorted(before, key=str)
    assert await count_conversations(chat_table, user_id=intruder) == 0


# --- get many


async def test_batch_get_answers_in_request_order_over_100_keys_in_chunks_of_100(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    owned = [await a_conversation(chat_table, user_id=user_id, title=f"c{n}") for n in range(3)]
    missing = [new_id() for _ in range(140)]
    wanted = [owned[0].id, *missing[:70], owned[1].id, owned[0].id, *missing[70:], owned[2].id]
    wanted.append("not-a-uuid")
    request_counter.reset()

    found = await get_conversations(chat_table, user_id=user_id, conversation_ids=wanted)

    expected = {record.id: record for record in owned}
    assert found == [expected.get(cid) for cid in wanted]
    assert len(found) == 145
    # 143 distinct valid ids: two requests, none bigger than DynamoDB's 100-key limit.
    assert request_counter.operations == ["BatchGetItem", "BatchGetItem"]
    assert len(request_counter.waves) == 1


async def test_batch_get_of_nothing_sends_no_request(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    assert await get_conversations(chat_table, user_id=user_id, conversation_ids=[]) == []
    assert request_counter.count == 0


# --- list


async def walk(
    table: ChatTable, user_id: str, *, limit: int, forward: bool, first: Page[ConversationRecord]
) -> list[Page[ConversationRecord]]:
    pages = [first]
    while pages[-1].has_next if forward else pages[-1].has_previous:
        edge = pages[-1].items[-1] if forward else pages[-1].items[0]
        pages.append(
            await list_conversations(
                table, user_id=user_id, limit=limit, cursor=edge.position, forward=forward
            )
        )
    return pages


async def test_conversations_list_newest_first_and_page_both_ways_without_gap_or_repeat(
    chat_table: ChatTable, user_id: str
) -> None:
    created = [await a_conversation(chat_table, user_id=user_id, title=f"c{n}") for n in range(8)]
    newest_first = [record.id for record in reversed(created)]

    first = await list_conversations(chat_table, user_id=user_id, limit=3)
    forward = await walk(chat_table, user_id, limit=3, forward=True, first=first)

    assert [[c.id for c in page.items] for page in forward] == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:8],
    ]
    assert [(page.has_previous, page.has_next) for page in forward] == [
        (False, True),
        (True, True),
        (True, False),
    ]
    backward = await walk(chat_table, user_id, limit=3, forward=False, first=forward[-1])
    assert [c.id for page in reversed(backward) for c in page.items] == newest_first
    assert [(page.has_previous, page.has_next) for page in backward] == [
        (True, False),
        (True, True),
        (False, True),
    ]


async def test_conversations_updated_in_the_same_instant_page_without_gap_or_repeat(
    chat_table: ChatTable, user_id: str
) -> None:
    frozen = dataclasses.replace(chat_table, clock=lambda: FIXED_INSTANT)
    created = [await a_conversation(frozen, user_id=user_id) for _ in range(7)]
    assert {c.updated_at for c in created} == {FIXED_INSTANT}
    # Ties on updatedAt are broken by id, newest-first meaning the greater id first.
    expected = sorted((c.id for c in created), reverse=True)

    first = await list_conversations(chat_table, user_id=user_id, limit=3)
    forward = await walk(chat_table, user_id, limit=3, forward=True, first=first)
    backward = await walk(chat_table, user_id, limit=3, forward=False, first=forward[-1])

    assert [c.id for page in forward for c in page.items] == expected
    assert len(forward) == 3
    assert [c.id for page in reversed(backward) for c in page.items] == expected


async def test_a_page_that_exactly_fills_the_list_says_there_is_nothing_beyond(
    chat_table: ChatTable, user_id: str
) -> None:
    for n in range(4):
        await a_conversation(chat_table, user_id=user_id, title=f"c{n}")

    page = await list_conversations(chat_table, user_id=user_id, limit=4)
    empty = await list_conversations(
        chat_table, user_id=user_id, limit=4, cursor=page.items[-1].position
    )

    assert (len(page.items), page.has_previous, page.has_next) == (4, False, False)
    assert (empty.items, empty.has_previous, empty.has_next) == ([], True, False)


async def test_an_update_moves_a_conversation_to_the_top(
    chat_table: ChatTable, user_id: str
) -> None:
    oldest, middle, newest = [
        await a_conversation(chat_table, user_id=user_id, title=f"c{n}") for n in range(3)
    ]

    await add_messages(
        chat_table, user_id=user_id, conversation_id=oldest.id, messages=[new_message()]
    )
    page = await list_conversations(chat_table, user_id=user_id, limit=10)

    assert [c.id for c in page.items] == [oldest.id, newest.id, middle.id]
    assert page.items[0].message_count == 1


async def test_paging_from_a_cursor_whose_conversation_moved_still_knows_both_sides(
    chat_table: ChatTable, user_id: str
) -> None:
    created = [await a_conversation(chat_table, user_id=user_id, title=f"c{n}") for n in range(5)]
    first = await list_conversations(chat_table, user_id=user_id, limit=2)
    assert [c.id for c in first.items] == [created[4].id, created[3].id]
    # The cursor's own conversation moves to the top: its old position is now empty.
    await update_conversation(
        chat_table, user_id=user_id, conversation_id=created[3].id, title="renamed"
    )

    second = await list_conversations(
        chat_table, user_id=user_id, limit=2, cursor=first.items[-1].position
    )

    assert [c.id for c in second.items] == [created[2].id, created[1].id]
    assert (second.has_previous, second.has_next) == (True, True)


# --- update


async def test_a_rename_bumps_the_version_and_moves_updated_at_forward(
    chat_table: ChatTable, user_id: str
) -> None:
    created = await a_conversation(chat_table, user_id=user_id)

    renamed = await update_conversation(
        chat_table, user_id=user_id, conversation_id=created.id, title="New title"
    )

    assert (renamed.title, renamed.version, renamed.model_id) == ("New title", 2, None)
    assert renamed.updated_at > created.updated_at
    assert renamed.created_at == created.created_at
    assert await stored_conversation(chat_table, created) == renamed


async def test_the_model_can_be_changed_and_cleared_without_touching_the_title(
    chat_table: ChatTable, user_id: str
) -> None:
    created = await a_conversation(chat_table, user_id=user_id, title="keep")

    changed = await update_conversation(
        chat_table, user_id=user_id, conversation_id=created.id, model_id="model-b"
    )
    cleared = await update_conversation(
        chat_table, user_id=user_id, conversation_id=created.id, model_id=None
    )

    assert (changed.title, changed.model_id, changed.version) == ("keep", "model-b", 2)
    assert (cleared.title, cleared.model_id, cleared.version) == ("keep", None, 3)


async def test_a_stale_expected_version_is_a_conflict_and_writes_nothing(
    chat_table: ChatTable, user_id: str
) -> None:
    created = await a_conversation(chat_table, user_id=user_id)
    current = await update_conversation(
        chat_table, user_id=user_id, conversation_id=created.id, title="v2", expected_version=1
    )

    with pytest.raises(ConflictError):
        await update_conversation(
            chat_table, user_id=user_id, conversation_id=created.id, title="v3", expected_version=1
        )

    assert await stored_conversation(chat_table, created) == current


async def test_of_concurrent_renames_at_one_version_exactly_one_wins(
    chat_table: ChatTable, user_id: str
) -> None:
    created = await a_conversation(chat_table, user_id=user_id)

    outcomes = await asyncio.gather(
        *(
            update_conversation(
                chat_table,
                user_id=user_id,
                conversation_id=created.id,
                title=f"title {n}",
                expected_version=1,
            )
            for n in range(8)
        ),
        return_exceptions=True,
    )

    winners = [o for o in outcomes if isinstance(o, ConversationRecord)]
    assert len(winners) == 1
    assert all(isinstance(o, ConflictError) for o in outcomes if o not in winners)
    assert await stored_conversation(chat_table, created) == winners[0]
    assert winners[0].version == 2


async def test_updating_a_missing_conversation_is_not_found(
    chat_table: ChatTable, user_id: str
) -> None:
    with pytest.raises(NotFoundError):
        await update_conversation(chat_table, user_id=user_id, conversation_id=new_id(), title="x")


async def test_with_a_stopped_clock_updated_at_still_moves_forward(
    chat_table: ChatTable, user_id: str
) -> None:
    frozen = dataclasses.replace(chat_table, clock=lambda: FIXED_INSTANT)
    created = await a_conversation(frozen, user_id=user_id)

    first = await update_conversation(
        frozen, user_id=user_id, conversation_id=created.id, title="a"
    )
    second = await update_conversation(
        frozen, user_id=user_id, conversation_id=created.id, title="b"
    )

    assert created.updated_at == FIXED_INSTANT
    assert first.updated_at == FIXED_INSTANT + ONE_TICK
    assert second.updated_at == FIXED_INSTANT + 2 * ONE_TICK


async def test_the_count_follows_creates_and_deletes(chat_table: ChatTable, user_id: str) -> None:
    created = [await a_conversation(chat_table, user_id=user_id) for _ in range(3)]

    await delete_conversation(chat_table, user_id=user_id, conversation_id=created[0].id)

    assert await count_conversations(chat_table, user_id=user_id) == 2

"""Share links in storage against a real endpoint: the snapshot's items and what they cost to
write, a branch too large for one snapshot, a read that meets two revisions, and every link
gone with whatever deleted its conversation, user or project, to the last item."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.errors import NotFoundError, UnavailableError, ValidationError
from graphql_api.storage import items, keys
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import delete_conversation, read_counts
from graphql_api.storage.erasure import erase_user_data
from graphql_api.storage.projects import create_project, delete_project
from graphql_api.storage.records import ConversationRecord, Item
from graphql_api.storage.shares import (
    PART_BYTES,
    SNAPSHOT_MAX_BYTES,
    create_share_link,
    read_shared,
    revoke_share_link,
    update_share_link,
)
from tests.factories import a_conversation, own_table, seed_messages
from tests.integration.test_storage_erasure import TickingClock, everything

# In a transaction, DynamoDB bills 2 write units per KB (rounded up) of each item it writes.
TRANSACTIONAL_WCU_PER_KB = 2


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    async with own_table(dynamodb_client, purpose="shares") as name:
        yield name


async def shared_conversation(
    table: ChatTable, user_id: str, count: int, *, content: str = "message {index}"
) -> ConversationRecord:
    conversation = await a_conversation(table, user_id=user_id)
    stored, _ = await seed_messages(table, conversation, count, content=content)
    return stored


async def link_items(table: ChatTable, link_id: str) -> list[Item]:
    """Every item that names the link, wherever it is."""
    return [
        item
        for item in await everything(table)
        if item["PK"]["S"] == keys.share_partition(link_id)
        or item["SK"]["S"] in (keys.share_link_sk(link_id), keys.share_pointer_sk(link_id))
    ]


def transactional_wcu(found: list[Item]) -> int:
    return sum(TRANSACTIONAL_WCU_PER_KB * math.ceil(items.item_size(item) / 1024) for item in found)


async def test_a_snapshot_is_its_branch_in_parts_and_costs_two_write_units_a_kb(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await shared_conversation(
        chat_table, user_id, 200, content="{index} " + "lorem ipsum " * 400
    )
    link = await create_share_link(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        up_to_message_id=None,
        max_links=10,
    )

    shared = await read_shared(chat_table, link_id=link.id)
    assert shared is not None
    assert [message.content.split()[0] for message in shared.messages] == [
        str(index) for index in range(200)
    ]
    found = await link_items(chat_table, link.id)
    parts = [item for item in found if item["SK"]["S"].startswith("PART#")]
    assert len(parts) == link.parts > 1
    assert all(items.item_size(part) <= PART_BYTES for part in parts)
    text = sum(len(message.content.encode()) for message in shared.messages)
    snapshot_bytes = sum(items.item_size(part) for part in parts)
    # The parts hold the text and little else; HEAD, the record and the pointer are a KB each.
    assert text <= snapshot_bytes <= text * 1.05
    per_kb = transactional_wcu(parts) / (snapshot_bytes / 1024)
    assert TRANSACTIONAL_WCU_PER_KB <= per_kb <= TRANSACTIONAL_WCU_PER_KB * 1.01
    fixed = [item for item in found if item not in parts]
    assert len(fixed) == 3
    assert transactional_wcu(fixed) == 3 * TRANSACTIONAL_WCU_PER_KB


async def test_a_branch_larger_than_a_snapshot_is_refused_naming_the_limit(
    chat_table: ChatTable, user_id: str
) -> None:
    # Each message just under the 300 KB kept inline.
    conversation = await shared_conversation(
        chat_table, user_id, 13, content="{index}" + "x" * (290 * 1024)
    )
    with pytest.raises(ValidationError) as refused:
        await create_share_link(
            chat_table,
            user_id=user_id,
            conversation_id=conversation.id,
            up_to_message_id=None,
            max_links=10,
        )
    assert refused.value.field == "upToMessageId"
    assert str(SNAPSHOT_MAX_BYTES) in refused.value.message
    assert (await read_counts(chat_table, user_id=user_id)).share_links == 0


async def test_a_read_never_mixes_two_revisions(chat_table: ChatTable, user_id: str) -> None:
    conversation = await shared_conversation(chat_table, user_id, 4)
    link = await create_share_link(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        up_to_message_id=None,
        max_links=10,
    )
    # A part of another revision, as a read in the middle of an update could meet one.
    part = items.share_part_item(link.id, 0, revision=link.revision + 1, messages=[])
    await chat_table.client.put_item(TableName=chat_table.name, Item=part)

    with pytest.raises(UnavailableError):
        await read_shared(chat_table, link_id=link.id)


async def test_an_update_keeps_the_id_and_leaves_no_stale_part(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await shared_conversation(
        chat_table, user_id, 40, content="{index} " + "y" * 30_000
    )
    link = await create_share_link(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        up_to_message_id=None,
        max_links=10,
    )
    first_message = await read_shared(chat_table, link_id=link.id)
    assert first_message is not None
    up_to = await _message_id_at(chat_table, conversation, depth=2)

    updated = await update_share_link(
        chat_table, user_id=user_id, link_id=link.id, up_to_message_id=up_to
    )

    assert (updated.id, updated.revision, updated.message_count) == (link.id, 2, 2)
    assert link.parts > updated.parts == 1
    shared = await read_shared(chat_table, link_id=link.id)
    assert shared is not None
    assert [message.content.split()[0] for message in shared.messages] == ["0", "1"]
    parts = [
        item
        for item in await link_items(chat_table, link.id)
        if item["SK"]["S"].startswith("PART#")
    ]
    assert [part["SK"]["S"] for part in parts] == [keys.share_part_sk(0)]


async def _message_id_at(table: ChatTable, conversation: ConversationRecord, *, depth: int) -> str:
    response = await table.client.get_item(
        TableName=table.name,
        Key=items.key(keys.conversation_partition(conversation.id), keys.message_sk(0, depth)),
        ConsistentRead=True,
    )
    return str(response["Item"]["messageId"]["S"])


async def test_another_users_link_cannot_be_updated_or_revoked(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await shared_conversation(chat_table, user_id, 2)
    link = await create_share_link(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        up_to_message_id=None,
        max_links=10,
    )
    intruder = f"user-{uuid.uuid4()}"
    with pytest.raises(NotFoundError):
        await revoke_share_link(chat_table, user_id=intruder, link_id=link.id)
    with pytest.raises(NotFoundError):
        await update_share_link(
            chat_table, user_id=intruder, link_id=link.id, up_to_message_id=None
        )
    assert await read_shared(chat_table, link_id=link.id) is not None


async def links_of(table: ChatTable, user_id: str, conversation: ConversationRecord) -> list[str]:
    made = []
    for _ in range(2):
        link = await create_share_link(
            table,
            user_id=user_id,
            conversation_id=conversation.id,
            up_to_message_id=None,
            max_links=100,
        )
        made.append(link.id)
    return made


def no_trace(found: list[Item], link_ids: list[str]) -> bool:
    named = {keys.share_partition(link_id) for link_id in link_ids}
    sks = {keys.share_link_sk(link_id) for link_id in link_ids} | {
        keys.share_pointer_sk(link_id) for link_id in link_ids
    }
    return not [item for item in found if item["PK"]["S"] in named or item["SK"]["S"] in sks]


async def test_deleting_a_conversation_revokes_its_links_to_the_last_item(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await shared_conversation(chat_table, user_id, 3)
    link_ids = await links_of(chat_table, user_id, conversation)

    await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)

    for link_id in link_ids:
        assert await read_shared(chat_table, link_id=link_id) is None
    assert no_trace(await everything(chat_table), link_ids)
    assert (await read_counts(chat_table, user_id=user_id)).share_links == 0


async def test_an_erasure_withdraws_every_link_at_its_first_call(
    dynamodb_client: DynamoDBClient, chat_table: ChatTable
) -> None:
    user_id = f"user-{uuid.uuid4()}"
    conversations = [await shared_conversation(chat_table, user_id, 2) for _ in range(3)]
    link_ids = [
        link_id
        for conversation in conversations
        for link_id in await links_of(chat_table, user_id, conversation)
    ]
    ticking = dataclasses.replace(chat_table, clock=TickingClock())

    first = await erase_user_data(ticking, user_id=user_id, budget=timedelta(seconds=1))

    assert not first.done
    for link_id in link_ids:
        assert await read_shared(chat_table, link_id=link_id) is None
    while not (await erase_user_data(chat_table, user_id=user_id)).done:
        pass
    assert no_trace(await everything(chat_table), link_ids)
    profile = await _profile(chat_table, user_id)
    assert set(profile) == {"PK", "SK", "changeVersion"}


async def _profile(table: ChatTable, user_id: str) -> dict[str, Any]:
    response = await table.client.get_item(
        TableName=table.name, Key=items.profile_key(user_id), ConsistentRead=True
    )
    return dict(response["Item"])


async def test_deleting_a_project_with_its_conversations_withdraws_their_links_at_once(
    chat_table: ChatTable, user_id: str
) -> None:
    project = await create_project(
        chat_table,
        user_id=user_id,
        project_id=str(uuid.uuid4()),
        name="p",
        instructions=None,
        max_projects=10,
    )
    inside = []
    for _ in range(3):
        conversation = await a_conversation(chat_table, user_id=user_id)
        conversation = await _moved(chat_table, conversation, project.id)
        stored, _ = await seed_messages(chat_table, conversation, 2)
        inside.append(stored)
    outside = await shared_conversation(chat_table, user_id, 2)
    link_ids = [
        link_id
        for conversation in inside
        for link_id in await links_of(chat_table, user_id, conversation)
    ]
    kept = await links_of(chat_table, user_id, outside)
    ticking = dataclasses.replace(chat_table, clock=TickingClock())

    first = await delete_project(
        ticking,
        user_id=user_id,
        project_id=project.id,
        delete_conversations=True,
        budget=timedelta(seconds=1),
    )

    assert not first.done
    for link_id in link_ids:
        assert await read_shared(chat_table, link_id=link_id) is None
    for link_id in kept:
        assert await read_shared(chat_table, link_id=link_id) is not None
    while not (
        await delete_project(
            chat_table, user_id=user_id, project_id=project.id, delete_conversations=True
        )
    ).done:
        pass
    assert no_trace(await everything(chat_table), link_ids)
    profile = await _profile(chat_table, user_id)
    assert not [name for name in profile if name.startswith("deletingProject#")]
    for link_id in kept:
        assert await read_shared(chat_table, link_id=link_id) is not None


async def _moved(
    table: ChatTable, conversation: ConversationRecord, project_id: str
) -> ConversationRecord:
    from graphql_api.storage.conversations import move_conversation

    moved = await move_conversation(
        table,
        user_id=conversation.user_id,
        conversation_id=conversation.id,
        project_id=project_id,
    )
    return moved.conversation

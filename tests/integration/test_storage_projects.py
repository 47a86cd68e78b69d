"""Projects in storage against a real endpoint: counts that stay exact through every kind of
conversation write, deletes that resume call after call in tiny budgets, erasure with
projects, and a move racing a delete."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio

from graphql_api.errors import NotFoundError
from graphql_api.storage import keys
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import (
    ConversationFilter,
    count_conversations,
    create_conversation,
    delete_conversation,
    list_conversations,
    move_conversation,
    update_conversation,
)
from graphql_api.storage.erasure import erase_user_data
from graphql_api.storage.projects import (
    ProjectDeletion,
    create_project,
    delete_project,
    read_project,
)
from graphql_api.storage.records import ProjectRecord
from tests.factories import own_table, seed_messages
from tests.integration.test_storage_erasure import TickingClock, everything


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    async with own_table(dynamodb_client, purpose="projects") as name:
        yield name


async def a_project(table: ChatTable, user_id: str, name: str = "p") -> ProjectRecord:
    return await create_project(
        table,
        user_id=user_id,
        project_id=str(uuid.uuid4()),
        name=name,
        instructions=None,
        max_projects=100,
    )


async def counted(table: ChatTable, user_id: str, project_id: str) -> dict[tuple[bool, bool], int]:
    project = await read_project(table, user_id=user_id, project_id=project_id)
    assert project is not None
    return {at: count for at, count in project.counts.items() if count}


async def listed_ids(table: ChatTable, user_id: str, where: ConversationFilter) -> set[str]:
    page = await list_conversations(table, user_id=user_id, limit=100, where=where)
    return {conversation.id for conversation in page.items}


async def test_a_projects_counts_follow_every_write_of_its_conversations(
    chat_table: ChatTable, user_id: str
) -> None:
    project = await a_project(chat_table, user_id)
    first = await create_conversation(chat_table, user_id=user_id, title="a", project_id=project.id)
    second = await create_conversation(chat_table, user_id=user_id, title="b")
    assert await counted(chat_table, user_id, project.id) == {(False, False): 1}

    await move_conversation(
        chat_table, user_id=user_id, conversation_id=second.id, project_id=project.id
    )
    await update_conversation(chat_table, user_id=user_id, conversation_id=first.id, pinned=True)
    await update_conversation(chat_table, user_id=user_id, conversation_id=second.id, archived=True)
    assert await counted(chat_table, user_id, project.id) == {(False, True): 1, (True, False): 1}

    await delete_conversation(chat_table, user_id=user_id, conversation_id=first.id)
    await move_conversation(chat_table, user_id=user_id, conversation_id=second.id, project_id=None)
    assert await counted(chat_table, user_id, project.id) == {}
    archived_none = ConversationFilter(archived=True, in_project=False)
    assert await listed_ids(chat_table, user_id, archived_none) == {second.id}
    assert await count_conversations(chat_table, user_id=user_id, where=archived_none) == 1


async def test_deleting_a_project_resumes_in_tiny_budgets_until_done(
    chat_table: ChatTable, user_id: str
) -> None:
    project = await a_project(chat_table, user_id)
    ids = []
    for index in range(4):
        conversation = await create_conversation(
            chat_table, user_id=user_id, title=f"c{index}", project_id=project.id
        )
        await seed_messages(chat_table, conversation, 30)
        ids.append(conversation.id)
    ticking = dataclasses.replace(chat_table, clock=TickingClock())

    calls: list[ProjectDeletion] = []
    for _ in range(50):
        calls.append(
            await delete_project(
                ticking,
                user_id=user_id,
                project_id=project.id,
                delete_conversations=True,
                budget=timedelta(seconds=2),
            )
        )
        if calls[-1].done:
            break

    assert len(calls) > 2
    remaining = [call.conversations_remaining for call in calls]
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] == 0
    found = await everything(chat_table)
    partitions = {keys.conversation_partition(cid) for cid in ids}
    assert [item for item in found if item["PK"]["S"] in partitions] == []
    mine = [item["SK"]["S"] for item in found if item["PK"]["S"] == keys.user_pk(user_id)]
    assert not [sk for sk in mine if sk.startswith("CONV#")]


async def test_erasure_removes_projects_in_tiny_budgets(
    chat_table: ChatTable, user_id: str
) -> None:
    for index in range(3):
        project = await a_project(chat_table, user_id, f"p{index}")
        for inner in range(2):
            conversation = await create_conversation(
                chat_table, user_id=user_id, title=f"c{inner}", project_id=project.id
            )
            await seed_messages(chat_table, conversation, 10)
    ticking = dataclasses.replace(chat_table, clock=TickingClock())

    for _ in range(100):
        erased = await erase_user_data(ticking, user_id=user_id, budget=timedelta(seconds=2))
        if erased.done:
            break
    else:
        raise AssertionError("erasure never finished")

    left = [item for item in await everything(chat_table) if user_id in item["PK"]["S"]]
    assert [item["SK"]["S"] for item in left] == [keys.PROFILE_SK]


async def moved_into(table: ChatTable, user_id: str, conversation_id: str, project_id: str) -> bool:
    """Whether the move landed (NOT_FOUND: the project was deleting first)."""
    try:
        await move_conversation(
            table, user_id=user_id, conversation_id=conversation_id, project_id=project_id
        )
    except NotFoundError:
        return False
    return True


async def deleted_whole(table: ChatTable, user_id: str, project_id: str) -> list[ProjectDeletion]:
    calls = [
        await delete_project(
            table, user_id=user_id, project_id=project_id, delete_conversations=False
        )
    ]
    while not calls[-1].done:
        calls.append(
            await delete_project(
                table, user_id=user_id, project_id=project_id, delete_conversations=False
            )
        )
    return calls


async def test_a_move_racing_a_delete_of_its_project_never_lands_in_it(
    chat_table: ChatTable, user_id: str
) -> None:
    for _ in range(5):
        project = await a_project(chat_table, user_id)
        conversation = await create_conversation(chat_table, user_id=user_id, title="racer")

        landed, calls = await asyncio.gather(
            moved_into(chat_table, user_id, conversation.id, project.id),
            deleted_whole(chat_table, user_id, project.id),
        )

        stored = await update_conversation(
            chat_table, user_id=user_id, conversation_id=conversation.id, title="after"
        )
        # Whichever came first, the project is gone and the conversation is in none.
        assert stored.project_id is None, (landed, calls)
        assert await read_project(chat_table, user_id=user_id, project_id=project.id) is None

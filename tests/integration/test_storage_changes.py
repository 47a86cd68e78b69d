"""Reading the change log while writes commit: a write landing between the reader's two looks
is a change to deliver, never a reason to make the device reload everything."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest_asyncio

from graphql_api.storage import keys
from graphql_api.storage.changes import current_version, read_changes
from graphql_api.storage.client import ChatTable, DynamoDBClient
from tests.factories import a_conversation, own_table


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    async with own_table(dynamodb_client, purpose="changes") as name:
        yield name


class WriteAfterEmptyLogQuery:
    """The real client, except that the first Query of the change log that finds nothing runs
    `write` before answering: the write commits between the reader's Query and what it reads
    next, as another device's write may on any engine."""

    def __init__(self, client: Any, write: Callable[[], Awaitable[object]]) -> None:
        self._client = client
        self._write: Callable[[], Awaitable[object]] | None = write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def query(self, **request: Any) -> Any:
        response = await self._client.query(**request)
        low = request["ExpressionAttributeValues"].get(":low", {}).get("S", "")
        if self._write is not None and low.startswith(keys.CHANGES_LOW) and not response["Items"]:
            write, self._write = self._write, None
            await write()
        return response


async def test_a_write_between_the_log_query_and_the_version_read_is_delivered(
    chat_table: ChatTable, user_id: str
) -> None:
    await a_conversation(chat_table, user_id=user_id, title="before")
    position = await current_version(chat_table, user_id=user_id)

    async def other_device() -> None:
        await a_conversation(chat_table, user_id=user_id, title="meanwhile")

    racing = dataclasses.replace(
        chat_table, client=cast(Any, WriteAfterEmptyLogQuery(chat_table.client, other_device))
    )
    page = await read_changes(racing, user_id=user_id, after=position, limit=10)

    assert not page.resync_required
    assert [change.version for change in page.changes] == [position + 1]
    assert page.changes[0].kind == "CONVERSATION_CREATED"


async def test_a_log_gone_past_the_position_still_asks_for_a_resync(
    chat_table: ChatTable, user_id: str
) -> None:
    await a_conversation(chat_table, user_id=user_id, title="one")
    position = await current_version(chat_table, user_id=user_id)
    await a_conversation(chat_table, user_id=user_id, title="two")
    latest = await current_version(chat_table, user_id=user_id)
    for version in range(position + 1, latest + 1):
        await chat_table.client.delete_item(
            TableName=chat_table.name,
            Key={"PK": {"S": keys.user_pk(user_id)}, "SK": {"S": keys.change_sk(version)}},
        )

    page = await read_changes(chat_table, user_id=user_id, after=position, limit=10)

    assert page.resync_required
    assert page.changes == []

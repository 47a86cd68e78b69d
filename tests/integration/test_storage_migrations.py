"""A table from before projects, brought up to date: create-table adds GSI2 to it, and the
backfill gives the conversations written without GSI2 keys their keys, resumably."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest_asyncio

from graphql_api.storage import items
from graphql_api.storage.batch import batch_put
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import (
    ConversationFilter,
    count_conversations,
    list_conversations,
    update_conversation,
)
from graphql_api.storage.migrations import backfill_grouping
from graphql_api.storage.profile import list_counter
from graphql_api.storage.records import ConversationRecord
from graphql_api.storage.table import (
    GSI_GROUPING,
    GSI_RECENCY,
    create_table,
    delete_table,
    table_definition,
)


def before_projects(table_name: str) -> dict[str, Any]:
    """The CreateTable input of the version before projects: GSI1 alone."""
    definition = copy.deepcopy(table_definition(table_name))
    definition["GlobalSecondaryIndexes"] = [
        index for index in definition["GlobalSecondaryIndexes"] if index["IndexName"] == GSI_RECENCY
    ]
    definition["AttributeDefinitions"] = [
        attribute
        for attribute in definition["AttributeDefinitions"]
        if not attribute["AttributeName"].startswith("GSI2")
    ]
    return definition


def written_before_projects(conversation: ConversationRecord) -> dict[str, Any]:
    """A conversation item as the version before projects wrote it: no GSI2 keys."""
    item = items.conversation_item(conversation)
    del item["GSI2PK"], item["GSI2SK"]
    return item


@pytest_asyncio.fixture
async def old_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[ChatTable]:
    name = f"chat-history-migrate-{uuid.uuid4().hex[:12]}"
    await dynamodb_client.create_table(**before_projects(name))
    try:
        yield ChatTable(client=dynamodb_client, name=name, deadline=30.0)
    finally:
        await delete_table(dynamodb_client, table_name=name)


async def seed_old_history(table: ChatTable, user_id: str, count: int) -> list[ConversationRecord]:
    """`count` conversations (every third archived) and their PROFILE counters, as the old
    version left them."""
    start = datetime.now(UTC) - timedelta(days=1)
    records = [
        ConversationRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            title=f"old {index}",
            model_id=None,
            created_at=start + timedelta(minutes=index),
            updated_at=start + timedelta(minutes=index),
            message_count=0,
            version=1,
            last_message=None,
            archived=index % 3 == 0,
        )
        for index in range(count)
    ]
    counters: dict[str, int] = {}
    for record in records:
        name = list_counter(archived=record.archived, pinned=record.pinned)
        counters[name] = counters.get(name, 0) + 1
    await batch_put(
        table,
        [*map(written_before_projects, records), items.profile_item(user_id, counters=counters)],
    )
    return records


async def index_names(table: ChatTable) -> set[str]:
    described = await table.client.describe_table(TableName=table.name)
    return {index["IndexName"] for index in described["Table"].get("GlobalSecondaryIndexes", [])}


async def test_create_table_adds_the_missing_index_to_an_existing_table(
    old_table: ChatTable, user_id: str
) -> None:
    await seed_old_history(old_table, user_id, 3)
    assert await index_names(old_table) == {GSI_RECENCY}

    created = await create_table(old_table.client, table_name=old_table.name, poll_seconds=0.1)
    again = await create_table(old_table.client, table_name=old_table.name, poll_seconds=0.1)

    assert (created, again) == (False, False)
    assert await index_names(old_table) == {GSI_RECENCY, GSI_GROUPING}
    home = await list_conversations(old_table, user_id=user_id, limit=10)
    assert len(home.items) == 2


async def test_the_backfill_lists_old_conversations_in_no_project_and_is_resumable(
    old_table: ChatTable, user_id: str
) -> None:
    records = await seed_old_history(old_table, user_id, 7)
    await create_table(old_table.client, table_name=old_table.name, poll_seconds=0.1)
    none = ConversationFilter(in_project=False)
    archived_none = ConversationFilter(in_project=False, archived=True)
    assert (await list_conversations(old_table, user_id=user_id, limit=10, where=none)).items == []

    first = await backfill_grouping(old_table)
    again = await backfill_grouping(old_table)

    assert (first.updated, first.skipped) == (7, 0)
    assert (again.updated, again.skipped) == (0, 0)
    active = await list_conversations(old_table, user_id=user_id, limit=10, where=none)
    archived = await list_conversations(old_table, user_id=user_id, limit=10, where=archived_none)
    assert {record.id for record in [*active.items, *archived.items]} == {r.id for r in records}
    # Before any project, every conversation is in none: the old counters already say how many.
    assert await count_conversations(old_table, user_id=user_id, where=none) == len(active.items)
    assert await count_conversations(old_table, user_id=user_id, where=archived_none) == 3


async def test_the_backfill_leaves_a_conversation_written_meanwhile_to_that_write(
    old_table: ChatTable, user_id: str
) -> None:
    (record,) = await seed_old_history(old_table, user_id, 1)
    await create_table(old_table.client, table_name=old_table.name, poll_seconds=0.1)
    read_by_the_scan = written_before_projects(record)
    # This version rewrites it (with its GSI2 keys) after the scan read it as it was.
    updated = await update_conversation(
        old_table, user_id=user_id, conversation_id=record.id, pinned=True
    )
    scanned = _ScanReturning(old_table.client, read_by_the_scan)
    scanning = dataclasses.replace(old_table, client=cast(DynamoDBClient, scanned))

    done = await backfill_grouping(scanning)

    assert (done.updated, done.skipped) == (0, 1)
    stored = await old_table.client.get_item(
        TableName=old_table.name, Key=items.conversation_key(user_id, record.id)
    )
    assert stored["Item"]["GSI2SK"] == items.conversation_item(updated)["GSI2SK"]


class _ScanReturning:
    """The table's client, but a Scan answers the items given: what a scan read a moment
    before a write (a race no real engine lets a test time)."""

    def __init__(self, client: DynamoDBClient, *found: dict[str, Any]) -> None:
        self._client = client
        self._found = list(found)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def scan(self, **_: Any) -> dict[str, Any]:
        return {"Items": self._found, "ScannedCount": len(self._found)}

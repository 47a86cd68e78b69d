"""Erasure against a real endpoint: resumable in bounded calls, complete, and only the caller's."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio

from graphql_api.settings import ContentSettings, DynamoDBSettings
from graphql_api.storage import keys
from graphql_api.storage.batch import batch_put
from graphql_api.storage.changes import current_version, read_changes
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.content import open_content_store
from graphql_api.storage.conversations import (
    create_conversation,
    delete_conversation,
    list_conversations,
    read_counts,
    update_conversation,
)
from graphql_api.storage.erasure import Erasure, erase_user_data
from graphql_api.storage.imports import import_conversation
from graphql_api.storage.items import marker_item, message_item, owner_item
from graphql_api.storage.records import ChangeRecord, Item, MessageRecord
from tests.conftest import LOCAL_CREDENTIALS, REGION
from tests.factories import a_conversation, own_table, seed_messages
from tests.import_builders import EDITED, imported, long_branchy_shape


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    async with own_table(dynamodb_client, purpose="erasure") as name:
        yield name


@dataclasses.dataclass
class TickingClock:
    """Real time that also moves one second at every reading, so a budget of a few seconds
    ends a call after a few units whatever the engine's speed."""

    ticks: int = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return datetime.now(UTC) + timedelta(seconds=self.ticks)


async def everything(table: ChatTable) -> list[Item]:
    request: dict[str, Any] = {"TableName": table.name, "ConsistentRead": True}
    found: list[Item] = []
    while True:
        response = await table.client.scan(**request)
        found.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def of(found: list[Item], user_id: str, conversation_ids: set[str]) -> list[Item]:
    partitions = {keys.conversation_partition(cid) for cid in conversation_ids}
    return [
        item
        for item in found
        if item["PK"]["S"] == keys.user_pk(user_id) or item["PK"]["S"] in partitions
    ]


async def bare_profile(table: ChatTable, user_id: str) -> Item:
    """The one item an erasure leaves: the PROFILE with the change version alone."""
    version = await current_version(table, user_id=user_id)
    return {
        "PK": {"S": keys.user_pk(user_id)},
        "SK": {"S": keys.PROFILE_SK},
        "changeVersion": {"N": str(version)},
    }


async def erase_until_done(table: ChatTable, user_id: str, budget: timedelta) -> list[Erasure]:
    calls: list[Erasure] = []
    for _ in range(200):
        calls.append(await erase_user_data(table, user_id=user_id, budget=budget))
        if calls[-1].done:
            return calls
    raise AssertionError(f"not done after {len(calls)} calls")


async def test_erasure_resumes_call_after_call_until_nothing_of_the_user_is_left(
    chat_table: ChatTable, user_id: str
) -> None:
    bystander = f"{user_id}-bystander"
    kept = imported(f"{user_id}-kept", EDITED)
    await import_conversation(chat_table, user_id=bystander, conversation=kept)
    ids = set()
    for index in range(6):
        conversation = imported(f"{user_id}-{index}", long_branchy_shape(30))
        await import_conversation(chat_table, user_id=user_id, conversation=conversation)
        ids.add(conversation.id)
    large = await a_conversation(chat_table, user_id=user_id)
    await seed_messages(chat_table, large, 1_200)
    ids.add(large.id)
    await update_conversation(chat_table, user_id=user_id, conversation_id=large.id, tags=["big"])
    before = await everything(chat_table)
    theirs = of(before, bystander, {kept.id})
    ticking = dataclasses.replace(chat_table, clock=TickingClock())

    calls = await erase_until_done(ticking, user_id, budget=timedelta(seconds=3))

    assert len(calls) > 3
    remaining = [call.conversations_remaining for call in calls]
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] == 0
    assert sum(call.messages_deleted for call in calls) == 6 * len(long_branchy_shape(30)) + 1_200
    after = await everything(chat_table)
    assert of(after, user_id, ids) == [await bare_profile(chat_table, user_id)]
    assert sorted(map(str, of(after, bystander, {kept.id}))) == sorted(map(str, theirs))
    assert (await read_counts(chat_table, user_id=user_id)).tags() == []


async def test_every_device_is_told_to_reload_after_an_erasure(
    chat_table: ChatTable, user_id: str
) -> None:
    logged: list[ChangeRecord] = []

    async def listen(user: str, change: ChangeRecord) -> None:
        logged.append(change)

    table = dataclasses.replace(chat_table, listener=listen)
    conversation = await a_conversation(table, user_id=user_id)
    stale = await current_version(table, user_id=user_id)
    await create_conversation(table, user_id=user_id, title="second")
    await delete_conversation(table, user_id=user_id, conversation_id=conversation.id)

    await erase_until_done(table, user_id, budget=timedelta(seconds=30))

    # A device far behind, and one that had read every change, the erasure's own included.
    caught_up = logged[-1].version
    assert logged[-1].kind == "CONVERSATION_DELETED"
    for position in (stale, caught_up):
        page = await read_changes(table, user_id=user_id, after=position, limit=10)
        assert page.resync_required, position
    # A new history goes on after the erasure's version, and reads as usual.
    version = await current_version(table, user_id=user_id)
    assert version == caught_up + 1
    await create_conversation(table, user_id=user_id, title="a new start")
    page = await read_changes(table, user_id=user_id, after=version, limit=10)
    assert [change.kind for change in page.changes] == ["CONVERSATION_CREATED"]


async def test_erasing_again_once_done_changes_nothing(chat_table: ChatTable, user_id: str) -> None:
    await a_conversation(chat_table, user_id=user_id)
    await erase_until_done(chat_table, user_id, budget=timedelta(seconds=30))
    version = await current_version(chat_table, user_id=user_id)

    again = await erase_user_data(chat_table, user_id=user_id)

    assert again == Erasure(done=True, conversations_remaining=0)
    assert await current_version(chat_table, user_id=user_id) == version


async def test_temporary_conversations_past_their_expiry_are_erased_too(
    chat_table: ChatTable, user_id: str
) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    temporary = await create_conversation(
        chat_table, user_id=user_id, title="temporary", expires_at=expires_at
    )
    await seed_messages(chat_table, temporary, 3)
    later = dataclasses.replace(chat_table, clock=lambda: datetime.now(UTC) + timedelta(days=1))
    assert (await list_conversations(later, user_id=user_id, limit=5)).items == []

    await erase_until_done(later, user_id, budget=timedelta(seconds=30))

    after = await everything(chat_table)
    assert of(after, user_id, {temporary.id}) == [await bare_profile(chat_table, user_id)]


async def test_what_a_failed_delete_left_behind_is_found_through_the_change_log(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    _, messages = await seed_messages(chat_table, conversation, 4)
    await delete_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    # As if the purge after the delete's commit had stopped part-way: messages, markers and
    # the OWNER item marked deleting are still there, the conversation item is gone.
    leftovers: list[Item] = [
        {**owner_item(conversation.id, user_id), "deleting": {"BOOL": True}},
        *(item for message in messages for item in _items_of(message)),
    ]
    await batch_put(chat_table, leftovers)

    await erase_until_done(chat_table, user_id, budget=timedelta(seconds=30))

    assert of(await everything(chat_table), "-", {conversation.id}) == []


def _items_of(message: MessageRecord) -> list[Item]:
    return [message_item(message), marker_item(message)]


async def test_content_kept_in_the_bucket_is_erased_with_its_messages(
    chat_table: ChatTable, user_id: str, content_bucket: ContentSettings
) -> None:
    dynamodb = DynamoDBSettings(table_name=chat_table.name, region=REGION)
    async with open_content_store(content_bucket, dynamodb, credentials=LOCAL_CREDENTIALS) as store:
        assert store is not None
        table = dataclasses.replace(chat_table, content=store)
        base = imported(f"{user_id}-large", [("q", None), ("a", "q")])
        conversation = dataclasses.replace(
            base,
            messages=[
                base.messages[0],
                dataclasses.replace(base.messages[1], content="x" * 500_000),
            ],
        )
        await import_conversation(table, user_id=user_id, conversation=conversation)
        prefix = f"content/{conversation.id}/"
        listed = await store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
        assert len(listed.get("Contents", [])) == 1

        await erase_until_done(table, user_id, budget=timedelta(seconds=30))

        listed = await store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
        assert listed.get("Contents", []) == []

"""DynamoDB misbehaving under the API: throttling, 5xx, stalls, resets, unprocessed batch work.

The app talks to the real engine through tests/faults.FaultProxy. Each fault is checked for
what the client sees (a retryable SERVICE_UNAVAILABLE within bounded time, or success when a
retry absorbs it), for what is stored (nothing half-written), and for recovery without restart.
No stopwatch: a bounded time is shown by the attempts the proxy counted (each ends at the read
timeout at worst), or by the deadline's own error in the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.storage import items, keys
from graphql_api.storage.client import ChatTable
from graphql_api.storage.conversations import get_conversation
from tests.api.harness import Api, create_conversation, new_id
from tests.apps import AppFactory
from tests.factories import seed_messages
from tests.faults import FaultProxy

READ_TIMEOUT = 0.5
MAX_ATTEMPTS = 3
# Far above the ~5 s that MAX_ATTEMPTS can take, so on a loaded machine too the attempt limits
# end these requests and the counts are exact; the `hurried` app tests the deadline itself.
DEADLINE = 10.0
HURRIED_DEADLINE = 0.5
# Far above every bound here: only a request that never ends can reach it.
HANG_GUARD = DEADLINE * 3
ADD = """
mutation($i: AddMessageInput!) { addMessage(input: $i) { message { id content } } }
"""
DELETE = """
mutation($i: DeleteConversationInput!) { deleteConversation(input: $i) { deletedConversationId } }
"""
READ = """
query($id: ID!) {
  conversation(id: $id) { messageCount messages(last: 50) { edges { node { id } } } }
}
"""
LIST = "{ conversations(first: 5) { edges { node { id } } } }"
CREATE_SHARE_LINK = """
mutation($conversationId: ID!) {
  createShareLink(input: { conversationId: $conversationId }) { shareLink { id } }
}
"""


@pytest_asyncio.fixture(scope="module")
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def faulty(proxy: FaultProxy, make_api: AppFactory) -> AsyncIterator[Api]:
    dynamodb = {
        "endpoint_url": proxy.url,
        "read_timeout": READ_TIMEOUT,
        "max_attempts": MAX_ATTEMPTS,
        "deadline": DEADLINE,
    }
    async with make_api(dynamodb=dynamodb) as api:
        yield api


@pytest_asyncio.fixture(scope="module")
async def hurried(proxy: FaultProxy, make_api: AppFactory) -> AsyncIterator[Api]:
    """The app with a deadline well inside one read timeout: only the deadline ends a stall."""
    dynamodb = {
        "endpoint_url": proxy.url,
        "read_timeout": HANG_GUARD / 2,
        "max_attempts": 1,
        "deadline": HURRIED_DEADLINE,
    }
    async with make_api(dynamodb=dynamodb) as api:
        yield api


@pytest.fixture(autouse=True)
def no_leftover_faults(proxy: FaultProxy) -> None:
    proxy.reset()


def assert_unavailable(body: dict[str, Any]) -> None:
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "retryable": True}
    assert "Exception" not in error["message"]


async def stored_count(api: Api, conversation_id: str) -> int:
    table = api.services.table
    response = await table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :p AND begins_with(SK, :m)",
        ExpressionAttributeValues={
            ":p": {"S": keys.conversation_partition(conversation_id)},
            ":m": {"S": keys.MESSAGES_LOW},
        },
        Select="COUNT",
        ConsistentRead=True,
    )
    return int(response["Count"])


@pytest.mark.parametrize(
    "error_type", ["ProvisionedThroughputExceededException", "ThrottlingException"]
)
async def test_a_brief_throttle_is_absorbed_by_retries(
    faulty: Api, proxy: FaultProxy, alice: str, error_type: str
) -> None:
    await create_conversation(faulty, alice)
    proxy.fail("Query", error_type=error_type, times=1)
    data = await faulty.data(LIST, user=alice)
    assert len(data["conversations"]["edges"]) == 1
    assert proxy.requests["Query"] == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_persistent_5xx_on_add_is_unavailable_and_writes_nothing(
    faulty: Api, proxy: FaultProxy, alice: str, status: int
) -> None:
    conversation = await create_conversation(faulty, alice)
    proxy.reset()  # count only the add's attempts
    proxy.server_error("TransactWriteItems", status=status, times=None)
    message = {"conversationId": conversation["id"], "role": "USER", "content": "hello"}
    assert_unavailable(await faulty.run(ADD, {"i": message}, user=alice))
    assert proxy.requests["TransactWriteItems"] == MAX_ATTEMPTS
    proxy.clear()
    assert await stored_count(faulty, conversation["id"]) == 0
    read = await faulty.data(READ, {"id": conversation["id"]}, user=alice)
    assert read["conversation"]["messageCount"] == 0
    # Recovery: the very next request succeeds on the same process.
    assert (await faulty.run(ADD, {"i": message}, user=alice)).get("errors") is None


async def test_persistent_throttling_is_unavailable_after_the_last_attempt_then_recovers(
    faulty: Api, proxy: FaultProxy, alice: str
) -> None:
    await create_conversation(faulty, alice)
    proxy.throttle("Query", times=None)
    assert_unavailable(await faulty.run(LIST, user=alice))
    assert proxy.requests["Query"] == MAX_ATTEMPTS
    assert (await faulty.http.get("/healthz")).status_code == 200
    proxy.clear()
    assert len((await faulty.data(LIST, user=alice))["conversations"]["edges"]) == 1


async def test_a_stalled_write_then_a_client_retry_stores_the_message_once(
    faulty: Api, proxy: FaultProxy, alice: str
) -> None:
    conversation = await create_conversation(faulty, alice)
    message = {"conversationId": conversation["id"], "id": new_id(), "role": "USER", "content": "x"}
    # The engine applies the write, but every answer arrives after the read timeout: the
    # client never learns the outcome, exactly like a mobile response lost in transit.
    proxy.reset()  # count only the add's attempts
    proxy.delay("TransactWriteItems", seconds=READ_TIMEOUT * 4, times=None, forward_first=True)
    assert_unavailable(await faulty.run(ADD, {"i": message}, user=alice))
    # Each attempt ended at the read timeout, and there were no more than configured.
    assert proxy.requests["TransactWriteItems"] == MAX_ATTEMPTS
    proxy.clear()
    retried = await faulty.data(ADD, {"i": message}, user=alice)
    assert retried["addMessage"]["message"]["id"] == message["id"]
    read = await faulty.data(READ, {"id": conversation["id"]}, user=alice)
    assert read["conversation"]["messageCount"] == 1
    assert await stored_count(faulty, conversation["id"]) == 1


async def test_a_connection_reset_is_retried(faulty: Api, proxy: FaultProxy, alice: str) -> None:
    conversation = await create_conversation(faulty, alice)
    before = proxy.requests["BatchGetItem"]
    proxy.reset_connection("BatchGetItem", times=1)
    read = await faulty.data(READ, {"id": conversation["id"]}, user=alice)
    assert read["conversation"]["messageCount"] == 0
    assert proxy.requests["BatchGetItem"] - before == 2


async def test_resets_on_every_attempt_are_unavailable(
    faulty: Api, proxy: FaultProxy, alice: str
) -> None:
    conversation = await create_conversation(faulty, alice)
    proxy.reset_connection("BatchGetItem", times=None)
    assert_unavailable(await faulty.run(READ, {"id": conversation["id"]}, user=alice))


async def test_unprocessed_keys_are_fetched_again(
    faulty: Api, proxy: FaultProxy, alice: str
) -> None:
    ids = [(await create_conversation(faulty, alice, f"c{n}"))["id"] for n in range(3)]
    before = proxy.requests["BatchGetItem"]
    proxy.leave_unprocessed("BatchGetItem", keep=1, times=2)
    query = " ".join(f'c{n}: conversation(id: "{cid}") {{ id }}' for n, cid in enumerate(ids))
    data = await faulty.data(f"{{ {query} }}", user=alice)
    assert [data[f"c{n}"]["id"] for n in range(3)] == ids
    assert proxy.requests["BatchGetItem"] - before == 3


async def test_a_delete_that_fails_part_way_hides_everything_and_a_retry_finishes(
    faulty: Api, proxy: FaultProxy, chat_table: ChatTable, alice: str
) -> None:
    conversation = await create_conversation(faulty, alice)
    # Seeded straight into the engine: the point is the delete, not 60 adds through the proxy.
    direct = dataclasses.replace(chat_table, name=faulty.services.table.name)
    record = await get_conversation(direct, user_id=alice, conversation_id=conversation["id"])
    assert record is not None
    await seed_messages(direct, record, 60)
    proxy.leave_unprocessed("BatchWriteItem", keep=10, times=2)
    proxy.server_error("BatchWriteItem", status=500, times=None, after=2)
    body = await faulty.run(DELETE, {"i": {"id": conversation["id"]}}, user=alice)
    assert_unavailable(body)
    proxy.clear()
    assert (await faulty.data(READ, {"id": conversation["id"]}, user=alice))["conversation"] is None
    assert (await faulty.data(LIST, user=alice))["conversations"]["edges"] == []
    assert await stored_count(faulty, conversation["id"]) > 0, "the fault struck part-way"
    finished = await faulty.data(DELETE, {"i": {"id": conversation["id"]}}, user=alice)
    assert finished["deleteConversation"]["deletedConversationId"] == conversation["id"]
    assert await stored_count(faulty, conversation["id"]) == 0


async def test_a_delete_that_fails_part_way_leaves_its_share_links_answering_404(
    faulty: Api, proxy: FaultProxy, alice: str
) -> None:
    conversation = await create_conversation(faulty, alice)
    cid = conversation["id"]
    await faulty.data(
        ADD, {"i": {"conversationId": cid, "role": "USER", "content": "q"}}, user=alice
    )
    created = await faulty.data(CREATE_SHARE_LINK, {"conversationId": cid}, user=alice)
    link_id = created["createShareLink"]["shareLink"]["id"]
    record = items.share_link_key(alice, link_id)
    # The delete's own transaction commits; every one after it (the purge revoking the link
    # its pointer names) fails.
    proxy.server_error("TransactWriteItems", status=500, times=None, after=1)
    body = await faulty.run(DELETE, {"i": {"id": cid}}, user=alice)
    assert_unavailable(body)
    proxy.clear()

    assert await stored(faulty, record) is not None, "the fault struck before the revocation"
    response = await faulty.http.get(f"/shared/{link_id}", headers={"Accept": "application/json"})
    assert response.status_code == 404
    await faulty.data(DELETE, {"i": {"id": cid}}, user=alice)
    assert await stored(faulty, record) is None
    assert await stored(faulty, items.share_head_key(link_id)) is None


async def stored(api: Api, key: dict[str, Any]) -> dict[str, Any] | None:
    table = api.services.table
    response = await table.client.get_item(TableName=table.name, Key=key, ConsistentRead=True)
    return response.get("Item")


async def test_a_stall_past_the_deadline_is_unavailable_when_the_deadline_hits(
    hurried: Api, proxy: FaultProxy, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The answer is held far beyond the deadline, and the read timeout is further still.
    proxy.delay("Query", seconds=HANG_GUARD, times=None)
    async with asyncio.timeout(HANG_GUARD):
        assert_unavailable(await hurried.run(LIST, user=alice))
    assert "DynamoDB did not answer in time" in caplog.text
    assert proxy.requests["Query"] <= 1, "cut short in its first attempt, not retried"

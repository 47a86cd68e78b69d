"""Concurrent clients and retried requests: counts stay exact and nothing is stored twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from tests.api.harness import Api, create_conversation, new_id
from tests.apps import AppFactory

# The most requests a test here has in flight at once.
CONCURRENT = 100

ADD = """
mutation($i: AddMessageInput!) {
  addMessage(input: $i) { message { id createdAt } }
}
"""
RENAME = """
mutation($i: RenameConversationInput!) {
  renameConversation(input: $i) { conversation { title version } }
}
"""
READ_BACK = """
query($id: ID!) {
  conversation(id: $id) {
    messageCount
    messages(last: 100) { totalCount edges { node { id content } } pageInfo { hasPreviousPage } }
  }
}
"""


@pytest_asyncio.fixture(scope="module")
async def api(make_api: AppFactory) -> AsyncIterator[Api]:
    """An app with a place for every request these tests send at once, and time for all of
    them: they test what concurrent requests do to the data, not shedding (test_admission)
    nor the deadline (one user's writes take turns, so the hundredth waits for ninety-nine on
    an engine that serves one request at a time)."""
    async with make_api(
        max_concurrent_requests=CONCURRENT, dynamodb={"deadline": 120.0}
    ) as running:
        yield running


@contextlib.asynccontextmanager
async def clients(api: Api, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Separate clients, each with its own connection pool, like separate devices."""
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api.asgi), base_url="http://testserver"
                )
            )
            for _ in range(count)
        ]
        yield opened


async def send(
    client: httpx.AsyncClient, api: Api, user: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=api.headers(user)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_hundred_concurrent_adds_from_four_clients_are_all_counted(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    async with clients(api, 4) as devices:
        bodies = await asyncio.gather(
            *(
                send(
                    devices[n % 4],
                    api,
                    alice,
                    ADD,
                    {
                        "i": {
                            "conversationId": conversation["id"],
                            "role": "USER",
                            "content": f"m{n}",
                        }
                    },
                )
                for n in range(CONCURRENT)
            )
        )
    assert [body.get("errors") for body in bodies] == [None] * CONCURRENT
    data = await api.data(READ_BACK, {"id": conversation["id"]}, user=alice)
    stored = data["conversation"]["messages"]["edges"]
    assert data["conversation"]["messageCount"] == CONCURRENT
    assert data["conversation"]["messages"]["pageInfo"]["hasPreviousPage"] is False
    assert sorted(edge["node"]["content"] for edge in stored) == sorted(
        f"m{n}" for n in range(CONCURRENT)
    )


async def test_the_same_add_sent_ten_times_at_once_stores_one_message(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    message = {
        "conversationId": conversation["id"],
        "id": new_id(),
        "role": "ASSISTANT",
        "content": "sent over a flaky network",
    }
    async with clients(api, 4) as devices:
        bodies = await asyncio.gather(
            *(send(devices[n % 4], api, alice, ADD, {"i": message}) for n in range(10))
        )
    assert [body.get("errors") for body in bodies] == [None] * 10
    answers = {
        (b["data"]["addMessage"]["message"]["id"], b["data"]["addMessage"]["message"]["createdAt"])
        for b in bodies
    }
    assert len(answers) == 1, "every retry must return the one stored message"
    data = await api.data(READ_BACK, {"id": conversation["id"]}, user=alice)
    assert data["conversation"]["messageCount"] == 1
    assert [e["node"]["id"] for e in data["conversation"]["messages"]["edges"]] == [message["id"]]


async def test_concurrent_renames_at_one_version_have_exactly_one_winner(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice, "original")
    async with clients(api, 4) as devices:
        bodies = await asyncio.gather(
            *(
                send(
                    devices[n % 4],
                    api,
                    alice,
                    RENAME,
                    {"i": {"id": conversation["id"], "title": f"title {n}", "expectedVersion": 1}},
                )
                for n in range(12)
            )
        )
    winners = [b for b in bodies if not b.get("errors")]
    losers = [b for b in bodies if b.get("errors")]
    assert len(winners) == 1
    assert {e["extensions"]["code"] for b in losers for e in b["errors"]} == {"CONFLICT"}
    final = await api.data(
        "query($id: ID!) { conversation(id: $id) { title version } }",
        {"id": conversation["id"]},
        user=alice,
    )
    assert final["conversation"] == winners[0]["data"]["renameConversation"]["conversation"]
    assert final["conversation"]["version"] == 2

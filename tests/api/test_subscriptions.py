"""Subscriptions over a real WebSocket on a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from graphql_api.settings import SubscriptionSettings
from tests.api.harness import api_settings, create_conversation, new_user
from tests.conftest import REGION, credentials_for
from tests.sockets import LiveApi, running_server
from tests.tokens import FakeUserPool

CHANGES = """
subscription Changes($since: String, $conversationId: ID) {
  changes(since: $since, conversationId: $conversationId) {
    version kind conversationId syncToken
    conversation { id title }
    messages { id content }
  }
}
"""


@pytest_asyncio.fixture(scope="module")
async def live(
    user_pool: FakeUserPool, dynamodb_endpoint: str, api_table: str
) -> AsyncIterator[LiveApi]:
    settings = api_settings(
        user_pool,
        table_name=api_table,
        endpoint=dynamodb_endpoint,
        region=REGION,
        subscriptions=SubscriptionSettings(poll_seconds=2.0),
    )
    async with running_server(
        settings, user_pool, credentials=credentials_for(dynamodb_endpoint)
    ) as running:
        yield running


async def test_a_write_over_http_reaches_the_subscriber(live: LiveApi) -> None:
    user = new_user()
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        sub = await socket.subscribe(CHANGES)
        created = await create_conversation(live.api, user, "Hello")
        data = await socket.next_data(sub)
        assert data["changes"]["kind"] == "CONVERSATION_CREATED"
        assert data["changes"]["conversation"] == {"id": created["id"], "title": "Hello"}

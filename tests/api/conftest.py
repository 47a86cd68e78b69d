"""App fixtures: one app per test module, on the suite's moto store, with real signed tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.gql import executor
from graphql_api.gql.planned import PlannedExecutor
from graphql_api.settings import ContentSettings
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.api.harness import Api, api_settings, new_user, running_api
from tests.api.rest_harness import Rest
from tests.conftest import REGION, credentials_for
from tests.tokens import FakeUserPool


@pytest.fixture(scope="session")
def user_pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as pool:
        yield pool


@pytest_asyncio.fixture(scope="module")
async def api_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """A table per module: moto copies the whole table on every transaction action, so a
    table shared by the suite makes every write slower as the suite goes on."""
    name = f"chat-history-api-test-{uuid.uuid4().hex[:12]}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


@pytest_asyncio.fixture(scope="module")
async def api(
    user_pool: FakeUserPool,
    dynamodb_endpoint: str,
    api_table: str,
    content_bucket: ContentSettings,
) -> AsyncIterator[Api]:
    settings = api_settings(
        user_pool,
        table_name=api_table,
        endpoint=dynamodb_endpoint,
        region=REGION,
        content=content_bucket,
    )
    async with running_api(
        settings, user_pool, credentials=credentials_for(dynamodb_endpoint)
    ) as running:
        yield running


@pytest.fixture
def alice() -> str:
    return new_user()


@pytest.fixture
def bob() -> str:
    return new_user()


@pytest_asyncio.fixture(scope="module")
async def rest(api: Api) -> Rest:
    """The REST routes of the module's app, every answer checked against its OpenAPI document."""
    return await Rest.on(api)


@pytest.fixture
def planned_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations that ran on the planned executor."""
    runs: list[str] = []

    class Counting(PlannedExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            runs.append(self.operation.name.value if self.operation.name else "")

    monkeypatch.setattr(executor, "PlannedExecutor", Counting)
    return runs

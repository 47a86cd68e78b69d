"""Shared fixtures: a real DynamoDB-compatible endpoint, a uniquely named table per run, and
`make_api`, the one way the suite builds an app (tests/apps.py).

With DYNAMODB_ENDPOINT_URL set, the suite runs against that engine (any DynamoDB-compatible
endpoint, or AWS itself); otherwise it starts moto in server mode on loopback, serialized the
way DynamoDB is atomic per request.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import aioboto3  # type: ignore[import-untyped]
import pytest
import pytest_asyncio

from graphql_api.local.moto_server import LockedMotoServer
from graphql_api.settings import ContentSettings
from graphql_api.storage.client import ChatTable, DynamoDBClient, client_config, open_client
from graphql_api.storage.table import create_table, delete_table
from tests import general_paths
from tests.counting import RequestCounter
from tests.tokens import FakeUserPool

if TYPE_CHECKING:
    from tests.apps import AppFactory

REGION = os.environ.get("AWS_REGION", "us-east-1")
LOCAL_CREDENTIALS = ("testing", "testing")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[LockedMotoServer]:
    """Always running: it also serves the Cognito IdP that issues the tests' real tokens."""
    with LockedMotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def dynamodb_endpoint(moto_server: LockedMotoServer) -> str:
    return os.environ.get("DYNAMODB_ENDPOINT_URL") or moto_server.url


def credentials_for(endpoint: str) -> tuple[str, str] | None:
    """Fake keys for a local engine; the normal AWS chain for anything else."""
    if endpoint.startswith(("http://127.", "http://localhost")):
        return LOCAL_CREDENTIALS
    return None


@pytest_asyncio.fixture(scope="session")
async def dynamodb_client(dynamodb_endpoint: str) -> AsyncIterator[DynamoDBClient]:
    config = client_config(
        max_pool_connections=64, connect_timeout=2.0, read_timeout=10.0, max_attempts=3
    )
    async with open_client(
        region=REGION,
        endpoint_url=dynamodb_endpoint,
        config=config,
        credentials=credentials_for(dynamodb_endpoint),
        fast_path=general_paths.fast_path(),
    ) as client:
        yield client


@pytest_asyncio.fixture(scope="session")
async def content_bucket(moto_server: LockedMotoServer) -> AsyncIterator[ContentSettings]:
    """A bucket for large message content, on moto's S3 (whatever engine serves DynamoDB)."""
    settings = ContentSettings(
        bucket=f"chat-content-test-{uuid.uuid4().hex[:12]}", endpoint_url=moto_server.url
    )
    session = aioboto3.Session(
        aws_access_key_id=LOCAL_CREDENTIALS[0],
        aws_secret_access_key=LOCAL_CREDENTIALS[1],
        region_name=REGION,
    )
    async with session.client("s3", endpoint_url=moto_server.url) as s3:
        await s3.create_bucket(Bucket=settings.bucket)
        yield settings


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


@pytest.fixture(scope="module")
def make_api(
    user_pool: FakeUserPool,
    dynamodb_endpoint: str,
    api_table: str,
    content_bucket: ContentSettings,
) -> AppFactory:
    """Apps on the suite's engine, the module's table, the session's user pool and the
    content bucket; see tests/apps.py."""
    # Imported here: tests.apps imports this module (REGION, credentials_for).
    from tests.apps import AppFactory

    return AppFactory(
        pool=user_pool, engine=dynamodb_endpoint, table_name=api_table, content=content_bucket
    )


@pytest_asyncio.fixture(scope="session")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-test-{uuid.uuid4().hex[:12]}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


@pytest.fixture
def chat_table(dynamodb_client: DynamoDBClient, table_name: str) -> ChatTable:
    return ChatTable(client=dynamodb_client, name=table_name, deadline=30.0)


@pytest.fixture
def request_counter(dynamodb_client: DynamoDBClient) -> Iterator[RequestCounter]:
    """Counts every DynamoDB request the shared client sends while the test runs."""
    with RequestCounter.attached(dynamodb_client) as counter:
        yield counter


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4()}"

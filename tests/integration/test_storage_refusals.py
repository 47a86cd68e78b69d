"""Requests the engine refuses for good, made to a real one: what callers and operators get.

A refusal is not the client's fault and no retry helps, so callers get a StorageRejectedError
(an internal error to a client), which names the engine's error code, the operation, the
table and the engine's request id, and nothing the request held.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from botocore.exceptions import ClientError

from graphql_api.errors import StorageRejectedError
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import count_conversations, create_conversation
from tests.factories import misdefined_table


@pytest_asyncio.fixture(scope="module")
async def misdefined(dynamodb_client: DynamoDBClient) -> AsyncIterator[ChatTable]:
    async with misdefined_table(dynamodb_client) as name:
        yield ChatTable(client=dynamodb_client, name=name, deadline=30.0)


async def test_a_refused_write_names_code_operation_table_and_request_id(
    misdefined: ChatTable, user_id: str
) -> None:
    title = f"TITLE{uuid.uuid4().hex}"

    with pytest.raises(StorageRejectedError) as raised:
        await create_conversation(misdefined, user_id=user_id, title=title)

    refused = raised.value
    cause = refused.__cause__
    assert isinstance(cause, ClientError)
    # The conversation, its owner guard, PROFILE and the CHG# entry, in one transaction.
    assert refused.details() == {
        "service": "DynamoDB",
        "code": "ValidationException",
        "operation": "TransactWriteItems",
        "table": misdefined.name,
        "request_id": cause.response["ResponseMetadata"]["RequestId"],
        "http_status": 400,
        "items": 4,
    }
    assert refused.request_id
    assert title not in str(refused)
    assert "ValidationException" in str(refused)


async def test_reads_of_the_same_table_succeed_so_only_writes_fail(
    misdefined: ChatTable, user_id: str
) -> None:
    # What the write above read first: the engine answers a read of a key it cannot hold
    # with nothing, so the refusal comes from the write itself.
    assert await count_conversations(misdefined, user_id=user_id) == 0

"""The fast path answers exactly what botocore's whole pipeline answers, on a real engine.

Two clients reach the same table: one on the fast path (whichever path the rest of the suite
takes, tests/general_paths.py) and one that sends every call botocore's whole way
(DYNAMODB_FAST_PATH=false). Whatever they are asked, their answers, errors and events must
agree; only the CPU they spend differs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from botocore.exceptions import ClientError, ParamValidationError

from graphql_api.settings import DynamoDBSettings
from graphql_api.storage.client import (
    ChatTable,
    DynamoDBClient,
    client_config,
    open_client,
    open_table,
)
from graphql_api.storage.conversations import (
    count_conversations,
    delete_conversation,
    get_conversation,
    list_conversations,
    update_conversation,
)
from graphql_api.storage.fast_path import FastPath, fast_path_of
from graphql_api.storage.messages import add_messages
from graphql_api.storage.threads import list_messages
from tests.conftest import REGION, credentials_for
from tests.counting import RequestCounter
from tests.factories import a_conversation, new_message


@contextlib.asynccontextmanager
async def client_on(endpoint: str, *, fast_path: bool) -> AsyncIterator[DynamoDBClient]:
    config = client_config(
        max_pool_connections=8, connect_timeout=2.0, read_timeout=10.0, max_attempts=3
    )
    async with open_client(
        region=REGION,
        endpoint_url=endpoint,
        config=config,
        credentials=credentials_for(endpoint),
        fast_path=fast_path,
    ) as client:
        yield client


@pytest_asyncio.fixture(scope="module")
async def fast_client(dynamodb_endpoint: str) -> AsyncIterator[DynamoDBClient]:
    async with client_on(dynamodb_endpoint, fast_path=True) as client:
        yield client


@pytest_asyncio.fixture(scope="module")
async def botocore_client(dynamodb_endpoint: str) -> AsyncIterator[DynamoDBClient]:
    async with client_on(dynamodb_endpoint, fast_path=False) as client:
        yield client


@pytest.fixture
def fast_table(fast_client: DynamoDBClient, table_name: str) -> ChatTable:
    return ChatTable(client=fast_client, name=table_name, deadline=30.0)


def fast_path(client: DynamoDBClient) -> FastPath:
    fast = fast_path_of(client)
    assert fast is not None, "the client takes the fast path"
    return fast


def without_metadata(response: Any) -> dict[str, Any]:
    """An answer without what differs between any two answers (request id, date)."""
    answer = dict(response)
    metadata = answer.pop("ResponseMetadata")
    assert metadata["HTTPStatusCode"] in (200, 400)
    assert metadata["RetryAttempts"] == 0
    return answer


# Every kind of attribute value, blobs included (storage writes none, but the fast path must
# still hand them over decoded, as botocore does).
EVERY_KIND: dict[str, Any] = {
    "text": {"S": 'naïve café ✓ "quoted" \\ back'},
    "number": {"N": "-12.5e3"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "list": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"inner": {"S": "b"}}}]},
    "map": {"M": {"a": {"SS": ["x", "y"]}, "b": {"NS": ["1", "2"]}}},
}
BLOBS: dict[str, Any] = {"blob": {"B": b"\x00\x01\xff"}, "blobs": {"BS": [b"\x00", b"\x01"]}}


@pytest.fixture
def partition() -> str:
    return f"FASTPATH#{uuid.uuid4()}"


async def put_items(client: DynamoDBClient, table: str, partition: str) -> None:
    for sort, extra in (("plain", {}), ("binary", BLOBS)):
        await client.put_item(
            TableName=table,
            Item={"PK": {"S": partition}, "SK": {"S": sort}, **EVERY_KIND, **extra},
        )


@pytest.mark.parametrize("writer", ["fast", "botocore"])
async def test_reads_answer_what_botocore_answers(
    fast_client: DynamoDBClient,
    botocore_client: DynamoDBClient,
    table_name: str,
    partition: str,
    writer: str,
) -> None:
    await put_items(fast_client if writer == "fast" else botocore_client, table_name, partition)
    keys = [{"PK": {"S": partition}, "SK": {"S": sort}} for sort in ("plain", "binary", "none")]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_item", {"TableName": table_name, "Key": keys[0], "ConsistentRead": True}),
        ("get_item", {"TableName": table_name, "Key": keys[1], "ConsistentRead": True}),
        ("get_item", {"TableName": table_name, "Key": keys[2]}),
        (
            "query",
            {
                "TableName": table_name,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": partition}},
                "Limit": 1,
            },
        ),
        (
            "query",
            {
                "TableName": table_name,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": partition}},
                "ScanIndexForward": False,
            },
        ),
        ("batch_get_item", {"RequestItems": {table_name: {"Keys": keys}}}),
    ]
    fast_before = fast_path(fast_client).requests_sent

    for method, params in calls:
        fast = await getattr(fast_client, method)(**params)
        slow = await getattr(botocore_client, method)(**params)
        assert without_metadata(fast) == without_metadata(slow), method

    assert fast_path(fast_client).requests_sent - fast_before == len(calls)
    found = await fast_client.get_item(TableName=table_name, Key=keys[1])
    assert found["Item"]["blob"] == {"B": b"\x00\x01\xff"}
    assert found["Item"]["text"] == EVERY_KIND["text"]
    assert found["ConsumedCapacity"]["TableName"] == table_name  # capacity still asked for


async def writes_of(client: DynamoDBClient, table: str, partition: str) -> list[dict[str, Any]]:
    key = {"PK": {"S": partition}, "SK": {"S": "counter"}}
    updated = await client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD hits :one SET tags = :tags",
        ExpressionAttributeValues={":one": {"N": "1"}, ":tags": {"SS": ["a"]}},
        ReturnValues="ALL_NEW",
    )
    transacted = await client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "ADD hits :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        ]
    )
    deleted = await client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    batch = await client.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": {**key, "x": {"N": "1"}}}}]}
    )
    answers = [without_metadata(answer) for answer in (updated, transacted, deleted, batch)]
    for answer in answers:
        # The partitions differ on purpose (each client its own): nothing else may.
        assert answer.get("Attributes", {}).pop("PK", key["PK"]) == key["PK"]
    return answers


async def test_writes_answer_what_botocore_answers(
    fast_client: DynamoDBClient,
    botocore_client: DynamoDBClient,
    table_name: str,
    partition: str,
) -> None:
    fast = await writes_of(fast_client, table_name, partition + "-fast")
    slow = await writes_of(botocore_client, table_name, partition + "-slow")

    assert fast == slow
    assert fast[0]["Attributes"]["hits"] == {"N": "1"}
    assert fast[2]["Attributes"]["hits"] == {"N": "2"}


async def errors_of(client: DynamoDBClient, table: str, partition: str) -> list[ClientError]:
    key = {"PK": {"S": partition}, "SK": {"S": "taken"}}
    await client.put_item(TableName=table, Item=key)
    raised: list[ClientError] = []
    with pytest.raises(ClientError) as conditional:
        await client.put_item(
            TableName=table, Item=key, ConditionExpression="attribute_not_exists(PK)"
        )
    raised.append(conditional.value)
    with pytest.raises(ClientError) as cancelled:
        await client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {**key, "SK": {"S": "fresh"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key,
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    raised.append(cancelled.value)
    with pytest.raises(ClientError) as missing:
        await client.get_item(TableName=f"{table}-missing", Key=key)
    raised.append(missing.value)
    return raised


async def test_errors_are_botocores(
    fast_client: DynamoDBClient,
    botocore_client: DynamoDBClient,
    table_name: str,
    partition: str,
) -> None:
    fast = await errors_of(fast_client, table_name, partition + "-fast")
    slow = await errors_of(botocore_client, table_name, partition + "-slow")

    assert [type(error).__name__ for error in fast] == [
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "ResourceNotFoundException",
    ]
    assert [type(error).__name__ for error in fast] == [type(error).__name__ for error in slow]
    for ours, theirs in zip(fast, slow, strict=True):
        assert without_metadata(ours.response) == without_metadata(theirs.response)
        assert str(ours) == str(theirs)
    assert [reason["Code"] for reason in fast[1].response["CancellationReasons"]] == [
        "None",
        "ConditionalCheckFailed",
    ]


async def test_parameters_are_still_validated_before_sending(
    fast_client: DynamoDBClient, table_name: str
) -> None:
    calls = fast_path(fast_client).requests_sent
    not_a_value: Any = "not a value"
    with RequestCounter.attached(fast_client) as counter:
        with pytest.raises(ParamValidationError):
            await fast_client.get_item(TableName=table_name, Key={"PK": not_a_value})
        with pytest.raises(ParamValidationError):
            await fast_client.query(TableName=table_name, Limit="ten")  # type: ignore[arg-type]
    assert counter.count == 0
    assert fast_path(fast_client).requests_sent == calls


async def test_every_storage_call_takes_the_fast_path_and_is_counted(
    fast_table: ChatTable, fast_client: DynamoDBClient, user_id: str
) -> None:
    fast_before = fast_path(fast_client).requests_sent
    with RequestCounter.attached(fast_client) as counter:
        conversation = await a_conversation(fast_table, user_id=user_id)
        await add_messages(
            fast_table,
            user_id=user_id,
            conversation_id=conversation.id,
            messages=[new_message("one"), new_message("two", role="assistant")],
        )
        await update_conversation(
            fast_table, user_id=user_id, conversation_id=conversation.id, title="renamed"
        )
        await list_conversations(fast_table, user_id=user_id, limit=5)
        await count_conversations(fast_table, user_id=user_id)
        await list_messages(fast_table, user_id=user_id, conversation_id=conversation.id, limit=5)
        await delete_conversation(fast_table, user_id=user_id, conversation_id=conversation.id)
        assert (
            await get_conversation(fast_table, user_id=user_id, conversation_id=conversation.id)
            is None
        )

    assert fast_path(fast_client).requests_sent - fast_before == counter.count
    assert {"BatchGetItem", "TransactWriteItems", "Query", "GetItem"} <= set(counter.operations)


@pytest.mark.parametrize(("setting", "fast"), [("false", False), ("true", True), (None, True)])
async def test_the_setting_switches_the_fast_path(
    dynamodb_endpoint: str, table_name: str, user_id: str, setting: str | None, fast: bool
) -> None:
    environ = {
        "CHAT_TABLE_NAME": table_name,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
    }
    if setting is not None:
        environ["DYNAMODB_FAST_PATH"] = setting
    settings = DynamoDBSettings.from_env(environ)

    async with open_table(settings, credentials=credentials_for(dynamodb_endpoint)) as table:
        with RequestCounter.attached(table.client) as counter:
            assert await count_conversations(table, user_id=user_id) == 0
        taken = fast_path_of(table.client)
        assert (taken is not None) is fast
        assert counter.operations == ["GetItem"]
        if taken is not None:
            assert taken.requests_sent == 1
